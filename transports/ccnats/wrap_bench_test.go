package ccnats_test

import (
	"testing"

	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// BenchmarkWrapConnPublishSmall is the price of the drop-in wrapper on a
// message under the threshold, which it sends untouched: raw is
// nats.Conn.Publish, wrapped is WrappedConn.Publish on the same server, in
// the same run. Read the figure as wrapped/raw.
func BenchmarkWrapConnPublishSmall(b *testing.B) {
	srv := natstest.Start(b)
	cc, _ := newChecker(b)
	body := payload(1<<10, 1)
	for _, mode := range []string{"raw", "wrapped"} {
		b.Run(mode, func(b *testing.B) {
			nc := srv.Connect(b)
			publish := nc.Publish
			if mode == "wrapped" {
				wc, err := ccnats.WrapConn(nc, cc)
				if err != nil {
					b.Fatal(err)
				}
				publish = wc.Publish
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := publish("bench.small", body); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					if err := nc.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			_ = nc.Flush()
		})
	}
}
