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
// Retrieve of 4 KiB, 64 KiB and 1 MiB payloads, incompressible ("random") and JSON-like
// ("json"), through an Engine over the harness's driver. Each reports MB/s
// (b.SetBytes) and, as "x-sha256", its throughput as a fraction of raw
// crypto/sha256 on the same bytes measured in the same run: hashing is the
// floor of a content-addressed store, so 1.0 would be as fast as hashing
// alone; the hash is timed in the same loop as the operation. The json
// cases also report the compression ratio ("x-smaller").
// SHA256 sub-benchmarks give the baseline in MB/s.
func RunBenchmarks(b *testing.B, newHarness BenchHarnessMaker) {
	f := setupWith(b, func(ctx context.Context) (Harness, error) { return newHarness(ctx, b) })
	for _, p := range []struct {
		name string
		data []byte
	}{
		{"random-4KiB", RandomPayload(4<<10, 1)},
		{"random-64KiB", RandomPayload(64<<10, 1)},
		{"json-64KiB", JSONPayload(64<<10, 2)},
		{"random-1MiB", RandomPayload(1<<20, 1)},
		{"json-1MiB", JSONPayload(1<<20, 2)},
	} {
		b.Run("Create/"+p.name, func(b *testing.B) { benchCreate(b, f, p.data) })
		if p.name == "random-4KiB" || p.name == "random-1MiB" {
			b.Run("CreateAgain/"+p.name, func(b *testing.B) { benchCreateAgain(b, f, p.data) })
		}
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

// sha256Time hashes payload and returns how long it took: the baseline of
// the x-sha256 metric, timed inside the benchmark loop, next to the
// operation it is compared with, so that a load spike hits both.
func sha256Time(payload []byte) time.Duration {
	start := time.Now()
	sha256.Sum256(payload)
	return time.Since(start)
}

func benchCreate(b *testing.B, f *fixture, data []byte) {
	payload := bytes.Clone(data)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var stored, size int64
	var tOp, tSHA time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// New content each time, so every Create hashes, compresses and
		// writes (a repeated payload would only be looked up).
		binary.LittleEndian.PutUint64(payload, uint64(i)+1)
		start := time.Now()
		s, err := f.e.Create(f.ctx, "bench", payload)
		tOp += time.Since(start)
		if err != nil {
			b.Fatalf("Create: %v", err)
		}
		b.StopTimer()
		tSHA += sha256Time(payload)
		stored, size = s.StoredSize, s.Size
		if err := f.e.Delete(f.ctx, s.String()); err != nil {
			b.Fatalf("Delete: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(tSHA)/float64(tOp), "x-sha256")
	if stored > 0 {
		b.ReportMetric(float64(size)/float64(stored), "x-smaller")
	}
}

// benchCreateAgain times a Create of content the engine has just stored
// (a retry, or the same payload sent to a second topic), which extends the
// stash's expiry.
func benchCreateAgain(b *testing.B, f *fixture, data []byte) {
	s, err := f.e.Create(f.ctx, "bench-again", data)
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	againstSHA256(b, data, func() {
		again, err := f.e.Create(f.ctx, "bench-again", data)
		if err != nil || again.String() != s.String() {
			b.Fatalf("Create again: %v, %v", again, err)
		}
	})
	if err := f.e.Delete(f.ctx, s.String()); err != nil {
		b.Fatalf("Delete: %v", err)
	}
}

func benchRetrieve(b *testing.B, f *fixture, data []byte) {
	s, err := f.e.Create(f.ctx, "bench-retrieve", data, stash.NoExpiry())
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	addr := s.String()
	againstSHA256(b, data, func() {
		got, err := f.e.Retrieve(f.ctx, addr)
		if err != nil {
			b.Fatalf("Retrieve: %v", err)
		}
		if len(got.Data) != len(data) {
			b.Fatalf("Retrieve returned %d bytes, want %d", len(got.Data), len(data))
		}
	})
	b.ReportMetric(float64(s.Size)/float64(s.StoredSize), "x-smaller")
}

// againstSHA256 runs op b.N times on data, with SHA-256 of data timed
// after each (off b's timer), and reports SHA-256's time over op's as
// "x-sha256".
func againstSHA256(b *testing.B, data []byte, op func()) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var tOp, tSHA time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		op()
		tOp += time.Since(start)
		b.StopTimer()
		tSHA += sha256Time(data)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(tSHA)/float64(tOp), "x-sha256")
}
