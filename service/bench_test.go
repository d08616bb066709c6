package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/benchratio"
	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
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
// compression on either side), PUT and GET, interleaved: each iteration
// runs the file driver and the backend (with auth, or against a server
// without it), the order alternating, and x-vs-file is the median over
// batches of the file driver's time over the backend's.
func BenchmarkVsFile(b *testing.B) {
	ds := benchDrivers(b)
	ctx := context.Background()
	file := ds["file"]
	for _, size := range []int{1 << 20, 64 << 20} {
		payload := stashtest.RandomPayload(size, 7)
		for _, op := range []string{"put", "get"} {
			for _, name := range []string{"objectstore", "objectstore-noauth"} {
				d := ds[name]
				b.Run(fmt.Sprintf("%dMiB/%s/%s", size>>20, op, name), func(b *testing.B) {
					keys := map[driver.Driver]string{file: benchKey(), d: benchKey()}
					if op == "get" {
						for dr, key := range keys {
							if err := dr.Put(ctx, "bench", key, bytes.NewReader(payload), int64(size), benchAttrs(size)); err != nil {
								b.Fatal(err)
							}
						}
					}
					buf := make([]byte, 1<<20)
					run := func(dr driver.Driver) sample {
						if op == "put" {
							k := benchKey()
							return timed(func() {
								if err := dr.Put(ctx, "bench", k, bytes.NewReader(payload), int64(size), benchAttrs(size)); err != nil {
									b.Fatal(err)
								}
							})
						}
						return timed(func() {
							rc, _, err := dr.Get(ctx, "bench", keys[dr])
							if err != nil {
								b.Fatal(err)
							}
							n, err := io.CopyBuffer(io.Discard, rc, buf)
							rc.Close()
							if err != nil || n != int64(size) {
								b.Fatalf("read %d bytes, %v", n, err)
							}
						})
					}
					pt := &pairTimer{batch: max(1, (8<<20)/size)}
					for i := 0; b.Loop(); i++ {
						if i%2 == 0 {
							tf := run(file)
							pt.add(tf, run(d))
						} else {
							to := run(d)
							pt.add(run(file), to)
						}
					}
					pt.report(b, size, "x-vs-file", "file", name)
				})
			}
		}
	}
}

// BenchmarkConcurrent64 runs 64 concurrent clients of the objectstore
// backend through this server, 64 KiB objects, GET then PUT, and reports
// requests per second, the p50 and p99 latency of one request, and the CPU
// time of the whole process (clients and server) per request, which load
// from other processes moves least.
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
	for _, op := range []string{"get", "put"} {
		b.Run(op, func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			var next atomic.Int64
			b.SetBytes(size)
			b.SetParallelism(max(1, 64/testingProcs()))
			cpu0, start := benchratio.CPUTime(), time.Now()
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
			elapsed, cpu := time.Since(start), benchratio.CPUTime()-cpu0
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				if cpu > 0 {
					b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/req")
				}
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

// sample is one timed run: wall-clock time and the CPU time of the whole
// process (client and in-process server, user and system).
type sample struct{ wall, cpu time.Duration }

func timed(f func()) sample {
	c0, t0 := benchratio.CPUTime(), time.Now()
	f()
	return sample{time.Since(t0), benchratio.CPUTime() - c0}
}

// pairTimer times two operations run alternately, in batches, and reports
// the median over batches of the ratio of their times: the figure that
// load on a shared machine moves least, since every batch sees both sides
// under the same load. The same for CPU time: on a machine without a free
// core, the wall-clock ratio tends to it.
type pairTimer struct {
	batch      int
	a, b       sample // this batch
	totA, totB sample
	n          int
	wall, cpu  []float64
}

// add records one run of each side; a batch closes every p.batch runs.
func (p *pairTimer) add(a, b sample) {
	p.a.wall += a.wall
	p.a.cpu += a.cpu
	p.b.wall += b.wall
	p.b.cpu += b.cpu
	p.n++
	if p.n%p.batch == 0 {
		p.flush()
	}
}

func (p *pairTimer) flush() {
	if p.a.wall > 0 && p.b.wall > 0 {
		p.wall = append(p.wall, float64(p.a.wall)/float64(p.b.wall))
	}
	if p.a.cpu > 0 && p.b.cpu > 0 {
		p.cpu = append(p.cpu, float64(p.a.cpu)/float64(p.b.cpu))
	}
	p.totA.wall += p.a.wall
	p.totA.cpu += p.a.cpu
	p.totB.wall += p.b.wall
	p.totB.cpu += p.b.cpu
	p.a, p.b = sample{}, sample{}
}

func median(v []float64) float64 {
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (m + v[len(v)/2-1]) / 2
	}
	return m
}

// report publishes the median wall-clock ratio (a's time over b's: b's
// throughput as a multiple of a's) as metric, the CPU-time ratio as
// metric+"-cpu", and both sides' throughput in MB/s.
func (p *pairTimer) report(b *testing.B, size int, metric, nameA, nameB string) {
	if p.a.wall > 0 || p.b.wall > 0 {
		p.flush()
	}
	if len(p.wall) == 0 || p.totA.wall == 0 || p.totB.wall == 0 {
		return
	}
	b.ReportMetric(median(p.wall), metric)
	if len(p.cpu) > 0 {
		b.ReportMetric(median(p.cpu), metric+"-cpu")
	}
	b.ReportMetric(float64(size)*float64(p.n)/p.totA.wall.Seconds()/1e6, nameA+"-MB/s")
	b.ReportMetric(float64(size)*float64(p.n)/p.totB.wall.Seconds()/1e6, nameB+"-MB/s")
	b.ReportMetric(0, "ns/op") // the pair's time is not one operation's
}

// BenchmarkEngineVsFile is the performance target at the engine
// level: stash.Engine Create and Retrieve over the objectstore backend
// through this server on loopback (auth on, a token per request; the server
// storing through the file driver) against stash.Engine over the file
// driver used directly, fsync on for both, the same bytes, interleaved in
// one loop (the order alternating). x-vs-file is the median over batches of
// the file driver's time over the service's: the service's throughput as a
// multiple of the file driver's (target: at least 0.8).
func BenchmarkEngineVsFile(b *testing.B) {
	ctx := context.Background()
	for _, p := range []struct {
		name  string
		data  []byte
		batch int
	}{
		{"random-1MiB", stashtest.RandomPayload(1<<20, 1), 8},
		{"json-1MiB", stashtest.JSONPayload(1<<20, 2), 8},
		{"random-64MiB", stashtest.RandomPayload(64<<20, 3), 1},
	} {
		for _, op := range []string{"create", "retrieve"} {
			b.Run(p.name+"/"+op, func(b *testing.B) {
				engines := benchEngines(b)
				file, svc := engines[0], engines[1]
				payload := bytes.Clone(p.data)
				var addrs [2]string
				if op == "retrieve" {
					for i, e := range engines {
						s, err := e.Create(ctx, "bench", payload, stash.NoExpiry())
						if err != nil {
							b.Fatal(err)
						}
						addrs[i] = s.String()
					}
				}
				run := func(e *stash.Engine, i int) sample {
					if op == "retrieve" {
						return timed(func() {
							got, err := e.Retrieve(ctx, addrs[i])
							if err != nil || len(got.Data) != len(payload) {
								b.Fatalf("Retrieve: %v", err)
							}
						})
					}
					var s *stash.Stash
					d := timed(func() {
						var err error
						if s, err = e.Create(ctx, "bench", payload); err != nil {
							b.Fatalf("Create: %v", err)
						}
					})
					b.StopTimer()
					if err := e.Delete(ctx, s.String()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					return d
				}
				pt := &pairTimer{batch: p.batch}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					// New content for every Create (a repeated payload
					// would only be looked up).
					binary.LittleEndian.PutUint64(payload, uint64(i)+1)
					if i%2 == 0 {
						tf := run(file, 0)
						pt.add(tf, run(svc, 1))
					} else {
						ts := run(svc, 1)
						pt.add(run(file, 0), ts)
					}
				}
				pt.report(b, len(payload), "x-vs-file", "file", "objectstore")
			})
		}
	}
}

// benchEngines returns an engine over the file driver directly and one
// over the objectstore backend through this server, both fsyncing.
func benchEngines(b *testing.B, opts ...objectstash.Option) [2]*stash.Engine {
	b.Helper()
	direct, err := filestash.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	h := &objectHarness{tb: b, sync: true, options: opts}
	viaService, err := h.MakeDriver(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var out [2]*stash.Engine
	for i, d := range []driver.Driver{direct, viaService} {
		e, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1), stash.WithTempDir(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close(); d.Close() })
		out[i] = e
	}
	return out
}

// BenchmarkHTTPFloor is the reference for BenchmarkEngineVsFile's Retrieve:
// plain net/http serving a file over loopback (no auth, no metadata, no
// claimstash code), the client hashing with SHA-256 as it reads into one
// buffer of the object's size, against opening, reading and hashing the
// same file directly, interleaved. It is the best a Retrieve through any
// HTTP service on this machine can do.
func BenchmarkHTTPFloor(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			payload := stashtest.RandomPayload(size, 1)
			name := filepath.Join(b.TempDir(), "object")
			if err := os.WriteFile(name, payload, 0o600); err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f, err := os.Open(name)
				if err != nil {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				defer f.Close()
				w.Header().Set("Content-Length", strconv.Itoa(size))
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = io.Copy(w, f)
			}))
			defer ts.Close()
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			defer client.CloseIdleConnections()
			readHashed := func(r io.Reader) { readHashedInto(b, r, size) }
			pt := &pairTimer{batch: max(1, (8<<20)/size)}
			for b.Loop() {
				tf := timed(func() {
					f, err := os.Open(name)
					if err != nil {
						b.Fatal(err)
					}
					readHashed(f)
					f.Close()
				})
				th := timed(func() {
					resp, err := client.Get(ts.URL)
					if err != nil {
						b.Fatal(err)
					}
					readHashed(resp.Body)
					resp.Body.Close()
				})
				pt.add(tf, th)
			}
			pt.report(b, size, "x-vs-file", "file", "http")
		})
	}
}

// BenchmarkTCPFloor is the floor under BenchmarkHTTPFloor: no HTTP at all.
// One loopback TCP connection; for each one-byte request the server
// sendfiles the file, and the client reads it into one buffer of the
// object's size, hashing with SHA-256 as it reads. It is set against
// opening, reading and hashing the same file directly, interleaved (the
// order alternating). What is left between the two is the kernel's
// loopback TCP (the sender's sendfile, which on loopback also does the
// receiver's TCP work, and the copy out of the socket) and the wake-ups
// between the two goroutines: the best any service over loopback TCP can
// do on this machine.
func BenchmarkTCPFloor(b *testing.B) {
	const size = 1 << 20
	payload := stashtest.RandomPayload(size, 1)
	name := filepath.Join(b.TempDir(), "object")
	if err := os.WriteFile(name, payload, 0o600); err != nil {
		b.Fatal(err)
	}
	c := loopbackConn(b, func(c net.Conn) {
		one := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, one); err != nil {
				return
			}
			f, err := os.Open(name)
			if err != nil {
				return
			}
			_, err = io.Copy(c, f) // sendfile
			f.Close()
			if err != nil {
				return
			}
		}
	})
	readHashed := func(r io.Reader) { readHashedInto(b, r, size) }
	file := func() sample {
		return timed(func() {
			f, err := os.Open(name)
			if err != nil {
				b.Fatal(err)
			}
			readHashed(f)
			f.Close()
		})
	}
	tcp := func() sample {
		return timed(func() {
			if _, err := c.Write([]byte{1}); err != nil {
				b.Fatal(err)
			}
			readHashed(c)
		})
	}
	pt := &pairTimer{batch: 8}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tf := file()
			pt.add(tf, tcp())
		} else {
			tt := tcp()
			pt.add(file(), tt)
		}
	}
	pt.report(b, size, "x-vs-file", "file", "tcp")
}

// BenchmarkTCPPutFloor is the same floor for BenchmarkEngineVsFile's
// Create: no HTTP, no auth, no HEADs. Both sides hash the 1 MiB payload
// with SHA-256 (as the engine does) and store it with the file driver's
// Put, fsync on; one side hands the driver the bytes from memory, the
// other sends them over one loopback TCP connection to a goroutine that
// hands the driver the socket and answers one byte once Put returns.
// Interleaved, the order alternating.
func BenchmarkTCPPutFloor(b *testing.B) {
	const size = 1 << 20
	ctx := context.Background()
	payload := stashtest.RandomPayload(size, 1)
	direct, err := filestash.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	remote, err := filestash.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer remote.Close()
	c := loopbackConn(b, func(c net.Conn) {
		var hdr [8]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			n := int64(binary.LittleEndian.Uint64(hdr[:]))
			if err := remote.Put(ctx, "bench", benchKey(), io.LimitReader(c, n), n, benchAttrs(size)); err != nil {
				return
			}
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
		}
	})
	file := func() sample {
		key := benchKey()
		return timed(func() {
			sha256.Sum256(payload)
			if err := direct.Put(ctx, "bench", key, bytes.NewReader(payload), size, benchAttrs(size)); err != nil {
				b.Fatal(err)
			}
		})
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], size)
	tcp := func() sample {
		return timed(func() {
			sha256.Sum256(payload)
			if _, err := c.Write(hdr[:]); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(payload); err != nil {
				b.Fatal(err)
			}
			var one [1]byte
			if _, err := io.ReadFull(c, one[:]); err != nil {
				b.Fatal(err)
			}
		})
	}
	pt := &pairTimer{batch: 8}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tf := file()
			pt.add(tf, tcp())
		} else {
			tt := tcp()
			pt.add(file(), tt)
		}
	}
	pt.report(b, size, "x-vs-file", "file", "tcp")
}

// readHashedInto reads size bytes from r into one new buffer of that size,
// hashing each piece with SHA-256 as it arrives, as a Retrieve does: the
// client side of the floor benchmarks.
func readHashedInto(b *testing.B, r io.Reader, size int) {
	data := make([]byte, size)
	h := sha256.New()
	n := 0
	for n < size {
		m, err := r.Read(data[n:])
		h.Write(data[n : n+m])
		n += m
		if err != nil {
			break
		}
	}
	if n != size {
		b.Fatalf("read %d bytes of %d", n, size)
	}
	h.Sum(nil)
}

// loopbackConn dials one loopback TCP connection to a listener whose one
// accepted connection serve handles, and closes both when b ends.
func loopbackConn(b *testing.B, serve func(c net.Conn)) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); <-served; ln.Close() })
	return c
}
