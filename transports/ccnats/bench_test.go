package ccnats_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// BenchmarkClaimCheck8MiB sends 8 MiB messages through a server with the
// default 1 MiB max_payload, one at a time, publish to handler: offload
// (hash, compression attempt, stash write), publish, rehydrate (stash read,
// verify) and, with claimcheck.DeleteAfterAck, delete, so the store does not
// grow. Each body differs (stashes are content-addressed: a repeat would be
// deduplicated).
func BenchmarkClaimCheck8MiB(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B, srv *natstest.Server) stash.Option
	}{
		{"nats", func(b *testing.B, srv *natstest.Server) stash.Option {
			st, err := natsstash.New(srv.JetStream(b))
			if err != nil {
				b.Fatal(err)
			}
			return stash.WithBackend(st)
		}},
		{"file", func(b *testing.B, _ *natstest.Server) stash.Option {
			st, err := filestash.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return stash.WithBackend(st)
		}},
		{"mem", func(b *testing.B, _ *natstest.Server) stash.Option {
			return stash.WithBackend(memstash.New())
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			srv := natstest.Start(b)
			eng, err := stash.New(be.open(b, srv))
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			// An iteration ends when the stash is deleted (after the
			// handler returns), so the last delete never races the
			// benchmark's teardown closing the connection.
			deleted := make(chan error, 1)
			got := make(chan int, 1)
			cc, err := claimcheck.New(eng, claimcheck.DeleteAfterAck(),
				claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
					if ev.Op == claimcheck.OpDelete {
						deleted <- ev.Err
					}
					if ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
						b.Error(ev.Err)
						got <- -1
					}
				})))
			if err != nil {
				b.Fatal(err)
			}
			conn, err := ccnats.NewConn(srv.Connect(b), cc)
			if err != nil {
				b.Fatal(err)
			}
			sub, err := conn.Subscribe("bench", func(m *nats.Msg) { got <- len(m.Data) })
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := conn.NATS().Flush(); err != nil {
				b.Fatal(err)
			}
			body := payload(8<<20, 8)
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint64(body, uint64(i))
				if err := conn.Publish(ctx, "bench", body); err != nil {
					b.Fatal(err)
				}
				select {
				case n := <-got:
					if n != len(body) {
						b.Fatalf("received %d bytes", n)
					}
				case <-time.After(30 * time.Second):
					b.Fatal("nothing received")
				}
				select {
				case err := <-deleted:
					if err != nil {
						b.Fatalf("delete after handling: %v", err)
					}
				case <-time.After(30 * time.Second):
					b.Fatal("stash not deleted")
				}
			}
		})
	}
}
