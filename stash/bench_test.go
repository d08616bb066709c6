package stash_test

import (
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

func BenchmarkParseAddress(b *testing.B) {
	for _, c := range []struct{ name, addr string }{
		{"mem", "mem://default/orders." + d64},
		{"scoped", "s3://bucket/org=42/project=1337/orders." + d64},
		{"inline", "inline://default/hi?data=eyJvcmRlciI6NDIsInN0YXR1cyI6InBhaWQifQ%3D%3D"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := stash.ParseAddress(c.addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCreateInline(b *testing.B) {
	e, err := stash.New()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	payload := []byte(`{"order":42,"status":"paid"}`)
	b.ReportAllocs()
	for b.Loop() {
		s, err := e.Create(ctx, "order", payload)
		if err != nil || !s.Address.IsInline() {
			b.Fatalf("Create: %v", err)
		}
	}
}

// BenchmarkRetrieve64MiB: Retrieve of a 64 MiB stash on mem. The target is
// at most 1.1x the payload allocated per op ("x-payload").
func BenchmarkRetrieve64MiB(b *testing.B) {
	for _, kind := range []string{"random", "json"} {
		b.Run(kind, func(b *testing.B) {
			addr, size := bigStash(b, kind)
			ctx := context.Background()
			b.SetBytes(size)
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				s, err := testEngine.Retrieve(ctx, addr)
				if err != nil || int64(len(s.Data)) != size {
					b.Fatalf("Retrieve: %v", err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(size), "x-payload")
		})
	}
}

// BenchmarkOpen64MiB: streaming a 64 MiB stash. The target is under 8 MiB
// allocated per op in total ("MiB/op").
func BenchmarkOpen64MiB(b *testing.B) {
	for _, kind := range []string{"random", "json"} {
		b.Run(kind, func(b *testing.B) {
			addr, size := bigStash(b, kind)
			ctx := context.Background()
			buf := make([]byte, 64<<10)
			b.SetBytes(size)
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				r, err := testEngine.Open(ctx, addr)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
				r.Close()
				if err != nil || n != size {
					b.Fatalf("Open: %d, %v", n, err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MiB/op")
		})
	}
}

// BenchmarkCreateFrom64MiB: streaming create of 64 MiB through the spool.
func BenchmarkCreateFrom64MiB(b *testing.B) {
	for _, kind := range []string{"random", "json"} {
		b.Run(kind, func(b *testing.B) {
			tile := stashtest.RandomPayload(8<<20, 1)
			if kind == "json" {
				tile = stashtest.JSONPayload(64<<10, 1)
			}
			e, _ := memEngine(b, stash.WithTempDir(b.TempDir()))
			ctx := context.Background()
			b.SetBytes(64 << 20)
			b.ReportAllocs()
			for b.Loop() {
				s, err := e.CreateFrom(ctx, "big", &patternReader{n: 64 << 20, tile: tile})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.Delete(ctx, s.String()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

var (
	testEngine *stash.Engine
	bigStashes = map[string]string{}
)

// bigStash creates (once per process) a 64 MiB stash of kind on mem.
func bigStash(b *testing.B, kind string) (string, int64) {
	const size = 64 << 20
	if testEngine == nil {
		e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1))
		if err != nil {
			b.Fatal(err)
		}
		testEngine = e
	}
	if addr, ok := bigStashes[kind]; ok {
		return addr, size
	}
	p := stashtest.RandomPayload(size, 1)
	if kind == "json" {
		p = stashtest.JSONPayload(size, 1)
	}
	s, err := testEngine.Create(context.Background(), "big-"+kind, p)
	if err != nil {
		b.Fatal(err)
	}
	bigStashes[kind] = s.String()
	return s.String(), size
}
