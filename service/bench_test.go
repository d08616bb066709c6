package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/objectstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// benchDrivers returns the file driver used directly and the objectstore
// backend talking to this server over loopback, over a file driver of its
// own; both fsync, as deployed.
func benchDrivers(b *testing.B) map[string]driver.Driver {
	b.Helper()
	direct, err := filestash.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { direct.Close() })
	h := &objectHarness{tb: b, sync: true}
	viaService, err := h.MakeDriver(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { viaService.Close() })
	// The same without auth, to show what signing and verifying cost.
	fs, err := filestash.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	open, err := service.New(fs, service.WithoutAuth())
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(open)
	b.Cleanup(func() { ts.Close(); fs.Close() })
	noAuth, err := objectstash.New(ts.URL)
	if err != nil {
		b.Fatal(err)
	}
	return map[string]driver.Driver{"file": direct, "objectstore": viaService, "objectstore-noauth": noAuth}
}

var benchSeq atomic.Int64

func benchKey() string {
	h := sha256.Sum256(fmt.Appendf(nil, "%d-%d", time.Now().UnixNano(), benchSeq.Add(1)))
	return "org=1/bench." + hex.EncodeToString(h[:])
}

func benchAttrs(n int) *driver.Attributes {
	return &driver.Attributes{Size: int64(n), StoredSize: int64(n), ContentType: "application/octet-stream", Created: time.Now()}
}

// BenchmarkVsFile compares the objectstore backend through the server with
// the file driver used directly, at the driver level (no hashing or
// compression on either side), PUT and GET, interleaved: each size and
// operation runs file then objectstore.
func BenchmarkVsFile(b *testing.B) {
	ds := benchDrivers(b)
	ctx := context.Background()
	for _, size := range []int{1 << 20, 64 << 20} {
		payload := stashtest.RandomPayload(size, 7)
		for _, op := range []string{"put", "get"} {
			for _, name := range []string{"file", "objectstore", "objectstore-noauth"} {
				d := ds[name]
				b.Run(fmt.Sprintf("%dMiB/%s/%s", size>>20, op, name), func(b *testing.B) {
					b.SetBytes(int64(size))
					key := benchKey()
					if op == "get" {
						if err := d.Put(ctx, "bench", key, bytes.NewReader(payload), int64(size), benchAttrs(size)); err != nil {
							b.Fatal(err)
						}
					}
					buf := make([]byte, 1<<20)
					b.ResetTimer()
					for range b.N {
						if op == "put" {
							k := benchKey()
							if err := d.Put(ctx, "bench", k, bytes.NewReader(payload), int64(size), benchAttrs(size)); err != nil {
								b.Fatal(err)
							}
							continue
						}
						rc, _, err := d.Get(ctx, "bench", key)
						if err != nil {
							b.Fatal(err)
						}
						n, err := io.CopyBuffer(io.Discard, rc, buf)
						rc.Close()
						if err != nil || n != int64(size) {
							b.Fatalf("read %d bytes, %v", n, err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkConcurrent64 runs 64 concurrent clients of the objectstore
// backend, 64 KiB objects, and reports requests per second and the p99
// latency of one request.
func BenchmarkConcurrent64(b *testing.B) {
	ds := benchDrivers(b)
	d := ds["objectstore"]
	ctx := context.Background()
	const size = 64 << 10
	payload := stashtest.RandomPayload(size, 9)
	keys := make([]string, 256)
	for i := range keys {
		keys[i] = benchKey()
		if err := d.Put(ctx, "bench", keys[i], bytes.NewReader(payload), size, benchAttrs(size)); err != nil {
			b.Fatal(err)
		}
	}
	for _, op := range []string{"put", "get"} {
		b.Run(op, func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			var next atomic.Int64
			b.SetBytes(size)
			b.SetParallelism(max(1, 64/testingProcs()))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				buf := make([]byte, size)
				for pb.Next() {
					t0 := time.Now()
					if op == "put" {
						if err := d.Put(ctx, "bench", benchKey(), bytes.NewReader(payload), size, benchAttrs(size)); err != nil {
							b.Error(err)
							return
						}
					} else {
						rc, _, err := d.Get(ctx, "bench", keys[next.Add(1)%int64(len(keys))])
						if err != nil {
							b.Error(err)
							return
						}
						_, err = io.ReadFull(rc, buf)
						rc.Close()
						if err != nil {
							b.Error(err)
							return
						}
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

func testingProcs() int { return max(1, runtime.GOMAXPROCS(0)) }

// fileHarness is the file driver used directly, for the engine-level
// comparison below.
type fileHarness struct{ tb testing.TB }

func (h fileHarness) Scheme() string { return filestash.Scheme }
func (h fileHarness) MakeDriver(context.Context) (driver.Driver, error) {
	return filestash.New(h.tb.TempDir())
}
func (h fileHarness) Corrupt(context.Context, string, string) error { return nil }
func (h fileHarness) Close()                                        {}

// BenchmarkEngine runs stashtest's engine benchmarks (Create and Retrieve
// of 1 MiB, hashing and compression included) over the file driver
// directly and over the objectstore backend through this server, in the
// same run, with fsync on.
func BenchmarkEngine(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		stashtest.RunBenchmarks(b, func(_ context.Context, tb testing.TB) (stashtest.Harness, error) { return fileHarness{tb}, nil })
	})
	b.Run("objectstore", func(b *testing.B) {
		stashtest.RunBenchmarks(b, func(_ context.Context, tb testing.TB) (stashtest.Harness, error) {
			return &objectHarness{tb: tb, sync: true}, nil
		})
	})
}
