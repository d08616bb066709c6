package stash_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// BenchmarkEncodeVsBefore compresses the same JSON (stashtest.JSONPayload,
// non-repeating) with the engine's encode and with the pipeline it replaced
// (CompressionAuto's trial compression of the first 64 KiB, then the whole
// payload streamed through a SpeedDefault encoder), alternately in one loop.
// It reports the speed-up ("x-faster", before's time over encode's), both
// throughputs, and both stored-size ratios. Random payloads report how
// much cheaper deciding not to compress became.
//
//	go test -run '^$' -bench EncodeVsBefore -benchtime 1s ./stash/
func BenchmarkEncodeVsBefore(b *testing.B) {
	old, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(stash.ZstdWindowForBench), zstd.WithEncoderCRC(false))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	compressBefore := func(p []byte) int {
		buf.Reset()
		old.Reset(&buf)
		_, _ = old.Write(p)
		_ = old.Close()
		return buf.Len()
	}
	before := func(p []byte) int {
		const sample = 64 << 10
		pays := func(n, m int) bool { return n*8 <= m*7 }
		if len(p) > 2*sample && !pays(compressBefore(p[:sample]), sample) {
			return len(p)
		}
		if n := compressBefore(p); pays(n, len(p)) {
			return n
		}
		return len(p)
	}
	for _, kind := range []string{"json", "random"} {
		for _, size := range []int{16 << 10, 1 << 20, 8 << 20} {
			p := stashtest.JSONPayload(size, 3)
			if kind == "random" {
				p = stashtest.RandomPayload(size, 3)
			}
			b.Run(fmt.Sprintf("%s/%dKiB", kind, size>>10), func(b *testing.B) {
				var tNew, tOld time.Duration
				var nNew, nOld int
				b.SetBytes(int64(size))
				for i := range b.N {
					run := func() {
						start := time.Now()
						nNew = stash.EncodeForBench(p)
						tNew += time.Since(start)
					}
					runOld := func() {
						start := time.Now()
						nOld = before(p)
						tOld += time.Since(start)
					}
					if i%2 == 0 {
						run()
						runOld()
					} else {
						runOld()
						run()
					}
				}
				n := float64(b.N) * float64(size) / 1e6
				b.ReportMetric(float64(tOld)/float64(tNew), "x-faster")
				b.ReportMetric(n/tNew.Seconds(), "MB/s-now")
				b.ReportMetric(n/tOld.Seconds(), "MB/s-before")
				b.ReportMetric(float64(size)/float64(nNew), "x-smaller-now")
				b.ReportMetric(float64(size)/float64(nOld), "x-smaller-before")
			})
		}
	}
}
