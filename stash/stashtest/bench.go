package stashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// RunBenchmarks runs the benchmarks every backend reports: Create and
// Retrieve of 1 MiB payloads, incompressible ("random") and JSON-like
// ("json"), through an Engine over the harness's driver. Each reports MB/s
// (b.SetBytes) and, as "x-sha256", its throughput as a fraction of raw
// crypto/sha256 on the same bytes measured in the same run: hashing is the
// floor of a content-addressed store, so 1.0 would be as fast as hashing
// alone. The json cases also report the compression ratio ("x-smaller").
// SHA256 sub-benchmarks give the baseline in MB/s.
func RunBenchmarks(b *testing.B, newHarness BenchHarnessMaker) {
	f := setupWith(b, func(ctx context.Context) (Harness, error) { return newHarness(ctx, b) })
	for _, p := range []struct {
		name string
		data []byte
	}{
		{"random-1MiB", RandomPayload(1<<20, 1)},
		{"json-1MiB", JSONPayload(1<<20, 2)},
	} {
		b.Run("Create/"+p.name, func(b *testing.B) { benchCreate(b, f, p.data) })
		b.Run("Retrieve/"+p.name, func(b *testing.B) { benchRetrieve(b, f, p.data) })
		b.Run("SHA256/"+p.name, func(b *testing.B) {
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				sha256.Sum256(p.data)
			}
		})
	}
}

// reportVsSHA256 reports the engine's throughput over the timed part of b
// as a fraction of sha256's on payload, timed now.
func reportVsSHA256(b *testing.B, payload []byte) {
	b.StopTimer()
	perOp := float64(b.Elapsed()) / float64(b.N)
	n := max(b.N, 20)
	start := time.Now()
	for range n {
		sha256.Sum256(payload)
	}
	shaPerOp := float64(time.Since(start)) / float64(n)
	if perOp > 0 {
		b.ReportMetric(shaPerOp/perOp, "x-sha256")
	}
}

func benchCreate(b *testing.B, f *fixture, data []byte) {
	payload := bytes.Clone(data)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var stored, size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// New content each time, so every Create hashes, compresses and
		// writes (a repeated payload would only be looked up).
		binary.LittleEndian.PutUint64(payload, uint64(i)+1)
		s, err := f.e.Create(f.ctx, "bench", payload)
		if err != nil {
			b.Fatalf("Create: %v", err)
		}
		b.StopTimer()
		stored, size = s.StoredSize, s.Size
		if err := f.e.Delete(f.ctx, s.String()); err != nil {
			b.Fatalf("Delete: %v", err)
		}
		b.StartTimer()
	}
	reportVsSHA256(b, payload)
	if stored > 0 {
		b.ReportMetric(float64(size)/float64(stored), "x-smaller")
	}
}

func benchRetrieve(b *testing.B, f *fixture, data []byte) {
	s, err := f.e.Create(f.ctx, "bench-retrieve", data, stash.NoExpiry())
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	addr := s.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := f.e.Retrieve(f.ctx, addr)
		if err != nil {
			b.Fatalf("Retrieve: %v", err)
		}
		if len(got.Data) != len(data) {
			b.Fatalf("Retrieve returned %d bytes, want %d", len(got.Data), len(data))
		}
	}
	reportVsSHA256(b, data)
	b.ReportMetric(float64(s.Size)/float64(s.StoredSize), "x-smaller")
}
