package stashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// RunFloorBenchmarks measures an Engine over the harness's driver against
// the floor of a content-addressed store, interleaved in one loop so that a
// load spike hits both sides. For each payload it runs, in batches that
// alternate their order:
//
//   - "sha256": crypto/sha256 over the payload, the floor of one side;
//   - "floor": SHA-256 plus one copy of the payload into fresh memory (the
//     copy a store must keep, or hand back, since the caller owns its
//     bytes);
//   - the engine operation.
//
// Create/ and Retrieve/ report "x-sha256" (SHA-256's time over the
// operation's: 1.0 is as fast as hashing alone) and "x-floor" (the
// operation's time over the floor's: 1.0 is at the floor), each the median
// of the per-batch ratios, and "MB/s-op" and "MB/s-sha256" from the totals.
// RoundTrip/ is Create then Retrieve of new content against twice the floor
// (one hash and one copy on each side), and reports "allocs/roundtrip", the
// allocations of one Create plus one Retrieve measured outside the timed
// loop. Every Create is of new content (its first 8 bytes change), so that
// it hashes, encodes and writes; the stash is deleted outside the clock.
//
//	go test -run '^$' -bench 'Floor/' -benchtime 200x ./stash/memstash/
func RunFloorBenchmarks(b *testing.B, newHarness BenchHarnessMaker) {
	f := setupWith(b, func(ctx context.Context) (Harness, error) { return newHarness(ctx, b) })
	for _, p := range []struct {
		name string
		data func() []byte
	}{
		{"random-4KiB", func() []byte { return RandomPayload(4<<10, 1) }},
		{"random-16KiB", func() []byte { return RandomPayload(16<<10, 1) }},
		{"random-64KiB", func() []byte { return RandomPayload(64<<10, 1) }},
		{"random-1MiB", func() []byte { return RandomPayload(1<<20, 1) }},
		{"json-16KiB", func() []byte { return JSONPayload(16<<10, 2) }},
		{"json-1MiB", func() []byte { return JSONPayload(1<<20, 2) }},
		{"json-8MiB", func() []byte { return JSONPayload(8<<20, 2) }},
		{"json-64MiB", func() []byte { return JSONPayload(64<<20, 2) }},
	} {
		var data []byte
		get := func() []byte {
			if data == nil {
				data = p.data()
			}
			return data
		}
		b.Run("Create/"+p.name, func(b *testing.B) { floorCreate(b, f, get()) })
		b.Run("Retrieve/"+p.name, func(b *testing.B) { floorRetrieve(b, f, get()) })
		b.Run("RoundTrip/"+p.name, func(b *testing.B) { floorRoundTrip(b, f, get()) })
	}
}

// sink keeps the floor's copies alive until the next one, as a caller
// would hold what it gets.
var sink []byte

// interleaved runs sha, floor and op b.N times each, in batches whose order
// rotates, and reports the medians of the per-batch ratios. size is the
// bytes each call of op processes (for MB/s).
// cleanup, if not nil, runs after each timed run of op, outside the clock.
func interleaved(b *testing.B, size int, sha, floor, op func(i int), cleanup func()) {
	const batches = 16
	per := max(1, b.N/batches)
	var rSHA, rFloor []float64
	var tSHA, tFloor, tOp time.Duration
	b.SetBytes(int64(size))
	b.ResetTimer()
	for done, batch := 0, 0; done < b.N; batch++ {
		n := min(per, b.N-done)
		var t [3]time.Duration
		fns := [3]func(int){sha, floor, op}
		for k := range 3 {
			j := (k + batch) % 3
			start := time.Now()
			for i := range n {
				fns[j](done + i)
			}
			t[j] += time.Since(start)
			if j == 2 && cleanup != nil {
				cleanup()
			}
		}
		done += n
		tSHA, tFloor, tOp = tSHA+t[0], tFloor+t[1], tOp+t[2]
		rSHA = append(rSHA, float64(t[0])/float64(t[2]))
		rFloor = append(rFloor, float64(t[2])/float64(t[1]))
	}
	b.StopTimer()
	mb := float64(b.N) * float64(size) / 1e6
	b.ReportMetric(median(rSHA), "x-sha256")
	b.ReportMetric(median(rFloor), "x-floor")
	b.ReportMetric(mb/tOp.Seconds(), "MB/s-op")
	b.ReportMetric(mb/tSHA.Seconds(), "MB/s-sha256")
	b.ReportMetric(mb/tFloor.Seconds(), "MB/s-floor")
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fresh returns payload with new first 8 bytes: new content for every i.
func fresh(payload []byte, i int) []byte {
	binary.LittleEndian.PutUint64(payload, uint64(i)+1<<40)
	return payload
}

func floorCreate(b *testing.B, f *fixture, data []byte) {
	payload := bytes.Clone(data)
	var made []string
	var stored, size int64
	hash := func(int) { sha256.Sum256(payload) }
	floor := func(int) {
		sha256.Sum256(payload)
		sink = bytes.Clone(payload)
	}
	op := func(i int) {
		s, err := f.e.Create(f.ctx, "bench", fresh(payload, i))
		if err != nil {
			b.Fatalf("Create: %v", err)
		}
		made = append(made, s.String())
		stored, size = s.StoredSize, s.Size
	}
	interleaved(b, len(payload), hash, floor, op, deleter(f, &made))
	if stored > 0 {
		b.ReportMetric(float64(size)/float64(stored), "x-smaller")
	}
}

// deleter deletes the stashes a batch made, outside the clock.
func deleter(f *fixture, made *[]string) func() {
	return func() {
		for _, a := range *made {
			_ = f.e.Delete(f.ctx, a)
		}
		*made = (*made)[:0]
	}
}

func floorRetrieve(b *testing.B, f *fixture, data []byte) {
	s, err := f.e.Create(f.ctx, "bench-retrieve", data, stash.NoExpiry())
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	defer func() { _ = f.e.Delete(f.ctx, s.String()) }()
	addr := s.String()
	hash := func(int) { sha256.Sum256(data) }
	floor := func(int) {
		sink = bytes.Clone(data)
		sha256.Sum256(sink)
	}
	op := func(int) {
		got, err := f.e.Retrieve(f.ctx, addr)
		if err != nil || len(got.Data) != len(data) {
			b.Fatalf("Retrieve: %v", err)
		}
		sink = got.Data
	}
	interleaved(b, len(data), hash, floor, op, nil)
	b.ReportMetric(float64(s.Size)/float64(s.StoredSize), "x-smaller")
}

func floorRoundTrip(b *testing.B, f *fixture, data []byte) {
	payload := bytes.Clone(data)
	roundTrip := func(i int) string {
		s, err := f.e.Create(f.ctx, "bench", fresh(payload, i))
		if err != nil {
			b.Fatalf("Create: %v", err)
		}
		got, err := f.e.Retrieve(f.ctx, s.String())
		if err != nil || len(got.Data) != len(payload) {
			b.Fatalf("Retrieve: %v", err)
		}
		sink = got.Data
		return s.String()
	}
	// Allocations of Create+Retrieve alone (the Delete is not counted).
	var allocs uint64
	const runs = 20
	var before, after runtime.MemStats
	for i := range runs {
		runtime.ReadMemStats(&before)
		addr := roundTrip(-1 - i)
		runtime.ReadMemStats(&after)
		allocs += after.Mallocs - before.Mallocs
		_ = f.e.Delete(f.ctx, addr)
	}
	var made []string
	hash := func(int) {
		sha256.Sum256(payload)
		sha256.Sum256(payload)
	}
	floor := func(int) {
		sha256.Sum256(payload)
		c := bytes.Clone(payload)
		sink = bytes.Clone(c)
		sha256.Sum256(sink)
	}
	op := func(i int) { made = append(made, roundTrip(i)) }
	interleaved(b, len(payload), hash, floor, op, deleter(f, &made))
	b.ReportMetric(float64(allocs)/runs, "allocs/roundtrip")
}
