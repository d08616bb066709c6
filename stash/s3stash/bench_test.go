package s3stash_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// BenchmarkConformance runs the benchmarks every backend reports (1 MiB
// Create and Retrieve through an Engine).
func BenchmarkConformance(b *testing.B) {
	stashtest.RunBenchmarks(b, newHarness)
}

const benchSize = 64 << 20

// BenchmarkTransfer64MiB compares the backend with the raw SDK on the same
// MinIO in the same run: Put against one PutObject, Get against one
// GetObject, of 64 MiB. The two alternate on every iteration so that the
// machine's noise falls on both; b's timer measures the backend, and
// "x-raw" is the raw SDK's median time over the backend's (1.0: as fast;
// above: faster, where parallel parts pay). Run with -benchtime 10x or more:
// on a shared machine single iterations vary by half. The backend runs with its defaults
// (DefaultPartSize, DefaultConcurrency), SHA-256 checksums included; the raw
// calls with the SDK's (a CRC32 checksum).
func BenchmarkTransfer64MiB(b *testing.B) {
	srv := server(b)
	raw := srv.Client()
	s, err := s3stash.New(raw, s3stash.WithBucket(testBucket), s3stash.WithPrefix(freshPrefix()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	data := stashtest.RandomPayload(benchSize, 42)

	b.Run("Put", func(b *testing.B) {
		b.SetBytes(benchSize)
		var rawTime, ours []time.Duration
		for i := 0; i < b.N; i++ {
			// New content and key each time: the backend's writes are
			// conditional and would not rewrite an existing key.
			binary.LittleEndian.PutUint64(data, uint64(i)+1)
			key := fmt.Sprintf("put-%d.%s", i, hexSHA(data))
			bucket, k := s.Locate("bench", key)

			b.StopTimer()
			start := time.Now()
			if _, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k + ".raw"), Body: bytes.NewReader(data)}); err != nil {
				b.Fatalf("raw PutObject: %v", err)
			}
			rawTime = append(rawTime, time.Since(start))
			b.StartTimer()

			start = time.Now()
			if err := s.Put(ctx, "bench", key, bytes.NewReader(data), benchSize, attrsFor(data)); err != nil {
				b.Fatalf("Put: %v", err)
			}
			ours = append(ours, time.Since(start))

			b.StopTimer()
			for _, kk := range []string{k, k + ".raw"} {
				if _, err := raw.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(kk)}); err != nil {
					b.Fatalf("DeleteObject: %v", err)
				}
			}
			b.StartTimer()
		}
		reportVsRaw(b, rawTime, ours)
	})

	b.Run("Get", func(b *testing.B) {
		key := "get." + hexSHA(data)
		if err := s.Put(ctx, "bench", key, bytes.NewReader(data), benchSize, attrsFor(data)); err != nil && !errors.Is(err, driver.ErrExists) {
			b.Fatalf("Put: %v", err)
		}
		bucket, k := s.Locate("bench", key)
		b.SetBytes(benchSize)
		b.ResetTimer()
		var rawTime, ours []time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			start := time.Now()
			out, err := raw.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
			if err != nil {
				b.Fatalf("raw GetObject: %v", err)
			}
			n, err := io.Copy(io.Discard, out.Body)
			out.Body.Close()
			if err != nil || n != benchSize {
				b.Fatalf("raw GetObject read %d bytes: %v", n, err)
			}
			rawTime = append(rawTime, time.Since(start))
			b.StartTimer()

			start = time.Now()
			rc, _, err := s.Get(ctx, "bench", key)
			if err != nil {
				b.Fatalf("Get: %v", err)
			}
			n, err = io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil || n != benchSize {
				b.Fatalf("Get read %d bytes: %v", n, err)
			}
			ours = append(ours, time.Since(start))
		}
		reportVsRaw(b, rawTime, ours)
	})
}

// reportVsRaw reports the raw SDK's median time over the backend's.
func reportVsRaw(b *testing.B, raw, ours []time.Duration) {
	median := func(d []time.Duration) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[len(d)/2])
	}
	if len(raw) > 0 && len(ours) > 0 {
		b.ReportMetric(median(raw)/median(ours), "x-raw")
	}
}
