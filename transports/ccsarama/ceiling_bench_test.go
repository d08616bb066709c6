package ccsarama_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/internal/benchratio"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// BenchmarkS3Ceiling is the ceiling BenchmarkConsumeS3 runs against: the
// same 1 MiB random stashes on the same loopback MinIO, read with no Kafka
// and no handler at all, in rounds that alternate in the same run:
//
//   - "raw-w1": one GetObject plus io.ReadAll at a time (the raw SDK; no
//     digest check);
//   - "raw-w8": eight of them at once;
//   - "engine-w1" and "engine-w8": Engine.Retrieve (the read the consumer
//     wrappers make: one GET, SHA-256 verified) one and eight at a time.
//
// It reports reads per second for each, and for each the CPU time per
// read of the MinIO process ("minio-cpu-ms") and of this process
// ("self-cpu-ms"), so that one can see where a 1 MiB read's time goes on
// this machine.
//
//	go test -run '^$' -bench S3Ceiling -benchtime 3x ./transports/ccsarama/
func BenchmarkS3Ceiling(b *testing.B) {
	const (
		size   = 1 << 20
		count  = 48
		bucket = "ceiling"
	)
	srv := miniotest.Start(b, bucket)
	minioPID := findPID(b, srv.Addr)
	client := srv.Client()
	store, err := s3stash.New(client)
	if err != nil {
		b.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(store), stash.WithNamespace(bucket), stash.WithInlineMax(-1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	ctx := context.Background()
	addrs := make([]string, count)
	keys := make([][2]string, count)
	dkeys := make([]string, count)
	for i := range addrs {
		s, err := e.Create(ctx, fmt.Sprintf("c%d", i), random(b, size))
		if err != nil {
			b.Fatal(err)
		}
		addrs[i] = s.Address.String()
		bk, k := store.Locate(s.Address.Namespace, s.Address.Key())
		keys[i] = [2]string{bk, k}
		dkeys[i] = s.Address.Key()
	}
	raw := func(i int) error {
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(keys[i][0]), Key: aws.String(keys[i][1])})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		n, err := io.Copy(io.Discard, out.Body)
		if err == nil && n != size {
			err = fmt.Errorf("%d bytes", n)
		}
		return err
	}
	ranged := func(i int) error {
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(keys[i][0]), Key: aws.String(keys[i][1]),
			Range: aws.String(fmt.Sprintf("bytes=0-%d", s3stash.DefaultPartSize-1))})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		n, err := io.Copy(io.Discard, out.Body)
		if err == nil && n != size {
			err = fmt.Errorf("%d bytes", n)
		}
		return err
	}
	driverGet := func(i int) error {
		rc, _, err := store.Get(ctx, bucket, dkeys[i])
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		if err == nil && n != size {
			err = fmt.Errorf("%d bytes", n)
		}
		return err
	}
	engine := func(i int) error {
		s, err := e.Retrieve(ctx, addrs[i])
		if err == nil && len(s.Data) != size {
			err = fmt.Errorf("%d bytes", len(s.Data))
		}
		return err
	}
	type mode struct {
		name        string
		read        func(int) error
		width       int
		wall, minio time.Duration
		self        time.Duration
		reads       int
	}
	modes := []*mode{
		{name: "raw-w1", read: raw, width: 1}, {name: "raw-w8", read: raw, width: 8},
		{name: "ranged-w1", read: ranged, width: 1}, {name: "driver-w1", read: driverGet, width: 1},
		{name: "engine-w1", read: engine, width: 1}, {name: "engine-w8", read: engine, width: 8},
	}
	round := func(m *mode) {
		m0, s0, t0 := benchratio.ProcessCPU(minioPID), benchratio.CPUTime(), time.Now()
		work := make(chan int)
		errs := make(chan error, m.width)
		var wg sync.WaitGroup
		for range m.width {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					if err := m.read(i); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for i := range count {
			work <- i
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatalf("%s: %v", m.name, err)
		default:
		}
		m.wall += time.Since(t0)
		m.minio += benchratio.ProcessCPU(minioPID) - m0
		m.self += benchratio.CPUTime() - s0
		m.reads += count
	}
	for _, m := range modes {
		round(m) // warm: connections, page cache
		*m = mode{name: m.name, read: m.read, width: m.width}
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range modes {
			round(modes[(i+j)%len(modes)])
		}
	}
	b.StopTimer()
	for _, m := range modes {
		n := float64(m.reads)
		b.ReportMetric(n/m.wall.Seconds(), "reads/s-"+m.name)
		b.ReportMetric(float64(m.minio.Microseconds())/1000/n, "minio-cpu-ms-"+m.name)
		b.ReportMetric(float64(m.self.Microseconds())/1000/n, "self-cpu-ms-"+m.name)
	}
}

// findPID is the process that listens on addr: the MinIO child, found by
// its command line.
func findPID(t testing.TB, addr string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmd), "minio") && strings.Contains(string(cmd), addr) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Skip("no /proc entry for the MinIO process: CPU accounting needs Linux")
	return 0
}
