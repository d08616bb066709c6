package stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
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

// BenchmarkCreateJSONVsBefore: engine Create of new JSON content on mem
// against a model of the Create that the performance pass replaced
// (SHA-256, then CompressionAuto's trial compression of the first 64 KiB
// and the whole payload streamed through one SpeedDefault encoder, then
// the store's copy of the result), in batches that alternate their order.
// "x-faster" is the median over batches of the model's time over
// Create's; the model's stored size is "x-smaller-before". On a machine
// whose other cores are busy, Create's frames are compressed one after
// another and the ratio falls toward the single-core one.
//
//	go test -run '^$' -bench CreateJSONVsBefore -benchtime 20x ./stash/
func BenchmarkCreateJSONVsBefore(b *testing.B) {
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
	var keep []byte
	before := func(p []byte) int {
		sha256.Sum256(p)
		const sample = 64 << 10
		pays := func(n, m int) bool { return n*8 <= m*7 }
		if len(p) > 2*sample && !pays(compressBefore(p[:sample]), sample) {
			keep = bytes.Clone(p)
			return len(p)
		}
		if n := compressBefore(p); pays(n, len(p)) {
			keep = bytes.Clone(buf.Bytes())
			return n
		}
		keep = bytes.Clone(p)
		return len(p)
	}
	ctx := context.Background()
	for _, size := range []int{16 << 10, 1 << 20, 8 << 20, 64 << 20} {
		p := stashtest.JSONPayload(size, 3)
		b.Run(sizeLabel(size), func(b *testing.B) {
			e, _ := memEngine(b)
			var tNew, tOld time.Duration
			var nNew, nOld int64
			var ratios []float64
			b.SetBytes(int64(size))
			for i := range b.N {
				binary.LittleEndian.PutUint64(p, uint64(i)+1)
				var s *stash.Stash
				var tn, to time.Duration
				runNew := func() {
					start := time.Now()
					s, err = e.Create(ctx, "bench", p)
					tn = time.Since(start)
				}
				runOld := func() {
					start := time.Now()
					nOld = int64(before(p))
					to = time.Since(start)
				}
				if i%2 == 0 {
					runNew()
					runOld()
				} else {
					runOld()
					runNew()
				}
				if err != nil {
					b.Fatal(err)
				}
				nNew = s.StoredSize
				tNew, tOld = tNew+tn, tOld+to
				ratios = append(ratios, float64(to)/float64(tn))
				b.StopTimer()
				_ = e.Delete(ctx, s.String())
				b.StartTimer()
			}
			n := float64(b.N) * float64(size) / 1e6
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "x-faster")
			b.ReportMetric(n/tNew.Seconds(), "MB/s-now")
			b.ReportMetric(n/tOld.Seconds(), "MB/s-before")
			b.ReportMetric(float64(size)/float64(nNew), "x-smaller-now")
			b.ReportMetric(float64(size)/float64(nOld), "x-smaller-before")
			_ = keep
		})
	}
}

func sizeLabel(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
