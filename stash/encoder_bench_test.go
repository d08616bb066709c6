package stash_test

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// BenchmarkEncoderChoice compresses non-repeating JSON into ONE zstd frame
// in the ways klauspost/compress offers, interleaved in one loop: EncodeAll
// on one goroutine (the reference), the streaming Encoder with one
// goroutine, with WithEncoderConcurrency(2) (asynchronous blocks), and with
// WithConcurrentBlocks (jobs compressed on several goroutines; job size is
// four windows, at least 512 KiB) at the engine's 4 MiB window, at a 1 MiB
// window and at the 128 KiB window the engine uses from parallelMin, the
// last also at SpeedDefault (the level choice). It reports each one's time over EncodeAll's (median of
// per-round ratios, under 1 is faster) and its stored size over EncodeAll's.
//
//	go test -run '^$' -bench EncoderChoice -benchtime 6x ./stash/
func BenchmarkEncoderChoice(b *testing.B) {
	mk := func(window int, opts ...zstd.EOption) *zstd.Encoder {
		enc, err := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithWindowSize(window), zstd.WithEncoderCRC(false)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return enc
	}
	const w = stash.ZstdWindowForBench
	ref := mk(w, zstd.WithEncoderConcurrency(1))
	ways := []struct {
		name string
		enc  *zstd.Encoder
	}{
		{"stream-1", mk(w, zstd.WithEncoderConcurrency(1))},
		{"stream-async2", mk(w, zstd.WithEncoderConcurrency(2))},
		{"blocks2-w4MiB", mk(w, zstd.WithEncoderConcurrency(2), zstd.WithConcurrentBlocks(true))},
		{"blocks2-w1MiB", mk(1<<20, zstd.WithEncoderConcurrency(2), zstd.WithConcurrentBlocks(true))},
		{"blocks2-w128KiB", mk(128<<10, zstd.WithEncoderConcurrency(2), zstd.WithConcurrentBlocks(true))},
		// The level choice, on the engine's encoder from parallelMin.
		{"blocks2-w128KiB-default", mk(128<<10, zstd.WithEncoderConcurrency(2), zstd.WithConcurrentBlocks(true), zstd.WithEncoderLevel(zstd.SpeedDefault))},
	}
	for _, size := range []int{256 << 10, 1 << 20, 4 << 20, 8 << 20, 32 << 20, 64 << 20} {
		p := stashtest.JSONPayload(size, 3)
		b.Run(sizeLabel(size), func(b *testing.B) {
			var buf bytes.Buffer
			dst := make([]byte, 0, size)
			ratios := make([][]float64, len(ways))
			sizes := make([]int, len(ways))
			var refSize int
			for range b.N {
				t0 := time.Now()
				dst = ref.EncodeAll(p, dst[:0])
				tRef := time.Since(t0)
				refSize = len(dst)
				for k, wy := range ways {
					buf.Reset()
					t0 := time.Now()
					wy.enc.Reset(&buf)
					for off := 0; off < len(p); off += 1 << 20 {
						_, _ = wy.enc.Write(p[off:min(off+1<<20, len(p))])
					}
					_ = wy.enc.Close()
					ratios[k] = append(ratios[k], float64(time.Since(t0))/float64(tRef))
					sizes[k] = buf.Len()
				}
			}
			for k, wy := range ways {
				r := ratios[k]
				sort.Float64s(r)
				b.ReportMetric(r[len(r)/2], fmt.Sprintf("x-time-%s", wy.name))
				b.ReportMetric(float64(sizes[k])/float64(refSize), fmt.Sprintf("x-size-%s", wy.name))
			}
		})
	}
}
