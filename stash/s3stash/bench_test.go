package s3stash_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/internal/benchratio"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// BenchmarkConformance runs the benchmarks every backend reports (1 MiB
// Create and Retrieve through an Engine).
func BenchmarkConformance(b *testing.B) {
	stashtest.RunBenchmarks(b, newHarness)
}

// transferSizes are the object sizes BenchmarkTransfer measures: one part
// and below, one default part, and many parts.
var transferSizes = []int{1 << 20, 8 << 20, 64 << 20}

// batchBytes is how much each side moves per batch: 64 objects of 1 MiB,
// 8 of 8 MiB, 1 of 64 MiB.
const batchBytes = 64 << 20

// BenchmarkTransfer compares the backend with the raw SDK on the same MinIO
// in the same run, for 1, 8 and 64 MiB objects: Put against one
// PutObject, Get (read to the end) against one GetObject (read to the end),
// of the same bytes. Raw and backend calls alternate one by one (which goes
// first alternates too), so that the machine's noise falls on both. One
// iteration is a batch of about 64 MiB each way; b's timer runs for the
// backend's calls only.
//
// Metrics: "x-raw" is the median over batches of raw time / backend time
// (1.0: as fast; above: faster); "cpu-x-raw" is the CPU that client and
// server spent, raw over backend, summed over the run (CPU time moves much
// less than wall time on a loaded machine); "raw-MB/s" is the raw SDK's
// throughput, the median over batches; "req/op" and "raw-req/op" count
// the HTTP requests of each side per operation.
//
// The raw calls use the SDK's defaults, as a user would write them:
// PutObject with a bytes.Reader body and nothing else set. Over plain HTTP
// (loopback MinIO) the SDK then computes a CRC32 checksum (its default
// RequestChecksumCalculation, "when supported") and the SigV4 payload
// SHA-256 in one pass before sending, and MinIO verifies both. GetObject
// is one request that the SDK does not validate (ChecksumMode unset). The
// backend runs with its defaults (DefaultPartSize, DefaultConcurrency),
// checksums and metadata included. The attributes (the payload's digest)
// are computed before the clock starts: the engine knows them when it
// calls Put.
func BenchmarkTransfer(b *testing.B) {
	srv := server(b)
	// Two clients with the same options, each counting its requests.
	var rawReqs, ourReqs atomic.Int64
	raw := countingClient(srv.Client(), &rawReqs)
	plain := srv.Client() // for the clean-up, not counted
	s, err := s3stash.New(countingClient(srv.Client(), &ourReqs), s3stash.WithBucket(testBucket), s3stash.WithPrefix(freshPrefix()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, size := range transferSizes {
		name := fmt.Sprintf("%dMiB", size>>20)
		ops := max(1, batchBytes/size)
		data := stashtest.RandomPayload(size, 42)

		b.Run("Put/"+name, func(b *testing.B) {
			b.SetBytes(int64(size * ops))
			m := newVsRaw(srv.PID(), &rawReqs, &ourReqs)
			var seq uint64
			b.StopTimer()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var keys []string
				for j := range ops {
					// New content and key each time: the backend's writes
					// are conditional and would not rewrite an existing key.
					seq++
					binary.LittleEndian.PutUint64(data, seq)
					attrs := attrsFor(data)
					key := fmt.Sprintf("put-%d.%s", seq, attrs.Digest)
					bucket, k := s.Locate("bench", key)
					keys = append(keys, k, k+".raw")
					rawPut := func() {
						if _, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k + ".raw"), Body: bytes.NewReader(data)}); err != nil {
							b.Fatalf("raw PutObject: %v", err)
						}
					}
					ourPut := func() {
						if err := s.Put(ctx, "bench", key, bytes.NewReader(data), int64(size), attrs); err != nil {
							b.Fatalf("Put: %v", err)
						}
					}
					m.pair(b, j%2 == 0, rawPut, ourPut)
				}
				m.endBatch(int64(size * ops))
				for _, k := range keys {
					if _, err := plain.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(testBucket), Key: aws.String(k)}); err != nil {
						b.Fatalf("DeleteObject: %v", err)
					}
				}
			}
			m.report(b)
		})

		b.Run("Get/"+name, func(b *testing.B) {
			attrs := attrsFor(data)
			key := "get." + attrs.Digest
			if err := s.Put(ctx, "bench", key, bytes.NewReader(data), int64(size), attrs); err != nil && !errors.Is(err, driver.ErrExists) {
				b.Fatalf("Put: %v", err)
			}
			bucket, k := s.Locate("bench", key)
			b.SetBytes(int64(size * ops))
			m := newVsRaw(srv.PID(), &rawReqs, &ourReqs)
			b.StopTimer()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range ops {
					rawGet := func() {
						out, err := raw.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
						if err != nil {
							b.Fatalf("raw GetObject: %v", err)
						}
						n, err := io.Copy(io.Discard, out.Body)
						out.Body.Close()
						if err != nil || n != int64(size) {
							b.Fatalf("raw GetObject read %d bytes: %v", n, err)
						}
					}
					ourGet := func() {
						rc, _, err := s.Get(ctx, "bench", key)
						if err != nil {
							b.Fatalf("Get: %v", err)
						}
						n, err := io.Copy(io.Discard, rc)
						rc.Close()
						if err != nil || n != int64(size) {
							b.Fatalf("Get read %d bytes: %v", n, err)
						}
					}
					m.pair(b, j%2 == 0, rawGet, ourGet)
				}
				m.endBatch(int64(size * ops))
			}
			m.report(b)
		})
	}
}

// vsRaw accumulates the interleaved timings of BenchmarkTransfer.
type vsRaw struct {
	pid             int // the server's, for its CPU time
	rawT, ourT      time.Duration
	rawCPU, ourCPU  time.Duration
	ratios, rawMBps []float64
	// HTTP requests, counted by the clients, and operations of each side.
	rawReqs, ourReqs *atomic.Int64
	reqs0            [2]int64
	ops              int
}

func newVsRaw(pid int, rawReqs, ourReqs *atomic.Int64) *vsRaw {
	return &vsRaw{pid: pid, rawReqs: rawReqs, ourReqs: ourReqs, reqs0: [2]int64{rawReqs.Load(), ourReqs.Load()}}
}

// pair runs the raw and the backend operation, in the order rawFirst says,
// timing each and counting the CPU both processes spend on it.
func (m *vsRaw) pair(b *testing.B, rawFirst bool, raw, ours func()) {
	run := func(f func(), wall, cpu *time.Duration, timed bool) {
		if timed {
			b.StartTimer() // outside the measurement: it reads memory statistics
		}
		c0, s0 := benchratio.CPUTime(), benchratio.ProcessCPU(m.pid)
		start := time.Now()
		f()
		*wall += time.Since(start)
		*cpu += benchratio.CPUTime() - c0 + benchratio.ProcessCPU(m.pid) - s0
		if timed {
			b.StopTimer()
		}
	}
	m.ops++
	if rawFirst {
		run(raw, &m.rawT, &m.rawCPU, false)
	}
	run(ours, &m.ourT, &m.ourCPU, true)
	if !rawFirst {
		run(raw, &m.rawT, &m.rawCPU, false)
	}
}

func (m *vsRaw) endBatch(bytes int64) {
	m.ratios = append(m.ratios, float64(m.rawT)/float64(m.ourT))
	m.rawMBps = append(m.rawMBps, float64(bytes)/m.rawT.Seconds()/1e6)
	m.rawT, m.ourT = 0, 0
}

func (m *vsRaw) report(b *testing.B) {
	b.ReportMetric(median(m.ratios), "x-raw")
	b.ReportMetric(median(m.rawMBps), "raw-MB/s")
	if m.ourCPU > 0 {
		b.ReportMetric(float64(m.rawCPU)/float64(m.ourCPU), "cpu-x-raw")
	}
	if m.ops > 0 {
		b.ReportMetric(float64(m.ourReqs.Load()-m.reqs0[1])/float64(m.ops), "req/op")
		b.ReportMetric(float64(m.rawReqs.Load()-m.reqs0[0])/float64(m.ops), "raw-req/op")
	}
}

// countingClient returns a client with c's options whose HTTP requests
// are counted in n.
func countingClient(c *s3.Client, n *atomic.Int64) *s3.Client {
	return s3.New(c.Options(), func(o *s3.Options) { o.HTTPClient = &countingHTTP{next: o.HTTPClient, n: n} })
}

type countingHTTP struct {
	next s3.HTTPClient
	n    *atomic.Int64
}

func (c *countingHTTP) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.Do(r)
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
