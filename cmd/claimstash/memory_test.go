package main

import (
	"context"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// peakHeap samples the in-use heap until stop is called and returns the
// largest value seen.
func peakHeap() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		quit = make(chan struct{})
		done = make(chan struct{})
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// countingWriter counts what it discards.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// bigStash stores size incompressible bytes in a fresh file backend,
// streamed through put, and returns the backend flag and the address.
func bigStash(tb testing.TB, size int64) (be, addr string) {
	tb.Helper()
	be = "--backend=file://" + tb.TempDir() + "?create_dir=true&nosync=true"
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"put", be, "--name", "big", "--no-inline"}, src, &out, &errb); code != 0 {
		tb.Fatalf("put: exit %d: %s", code, errb.String())
	}
	return be, strings.TrimSpace(out.String())
}

// TestGetMemoryBounded checks that get streams: the heap in use while a
// 256 MiB stash goes to stdout stays far below its size (the target
// is under 64 MiB for 512 MiB). A stash over --verify-buffer (64 MiB) is not
// held back, so the buffer does not count here.
func TestGetMemoryBounded(t *testing.T) {
	const size = 256 << 20
	be, addr := bigStash(t, size)
	runtime.GC()
	var out countingWriter
	var errb strings.Builder
	stop := peakHeap()
	code := run(context.Background(), []string{"get", be, addr}, strings.NewReader(""), &out, &errb)
	peak := stop()
	if code != 0 || out.n != size {
		t.Fatalf("get: exit %d, %d bytes: %s", code, out.n, errb.String())
	}
	t.Logf("peak heap in use during get of %d MiB: %.1f MiB", size>>20, float64(peak)/(1<<20))
	if peak >= 64<<20 {
		t.Fatalf("peak heap %.1f MiB during get of %d MiB, want < 64 MiB", float64(peak)/(1<<20), size>>20)
	}
}

// BenchmarkGet reads a 64 MiB stash through get and reports the peak heap:
// to stdout, where a stash of up to --verify-buffer (64 MiB) is held in
// memory until verified, and with -o, which streams into a file that is
// renamed once verified.
func BenchmarkGet(b *testing.B) {
	const size = 64 << 20
	be, addr := bigStash(b, size)
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"stdout", nil},
		{"file", []string{"-o", filepath.Join(b.TempDir(), "out")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runtime.GC()
			b.SetBytes(size)
			b.ResetTimer()
			stop := peakHeap()
			for b.Loop() {
				var out countingWriter
				args := append([]string{"get", be, addr}, bc.args...)
				if code := run(context.Background(), args, strings.NewReader(""), &out, io.Discard); code != 0 || bc.args == nil && out.n != size {
					b.Fatalf("get: exit %d, %d bytes", code, out.n)
				}
				// Each run is a process of its own in real use: collect
				// its garbage before the next, so the peak is one run's.
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
			}
			b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
		})
	}
}
