package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// storedFile is the directory in which the file backend under dir keeps
// the stash at addr (its bytes in data).
func storedFile(dir, addr string) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(addr, "file://"), "/")
	return filepath.Join(dir, "default", key)
}

func TestServeSweepEvery(t *testing.T) {
	be, dir := backend(t)
	keep := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "--name", "keep", "--ttl", "3h")
	before := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "--name", "before", "--ttl", "10ms")
	time.Sleep(20 * time.Millisecond)
	for _, a := range []string{keep, before} {
		if _, err := os.Stat(storedFile(dir, a)); err != nil {
			t.Fatalf("the file backend's layout: %v", err)
		}
	}
	_, stop := startServe(t, be, "--no-auth", "--sweep-every", "1s")
	gone := func(addr string, within time.Duration) bool {
		for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(storedFile(dir, addr)); os.IsNotExist(err) {
				return true
			}
		}
		return false
	}
	// At start: the stash that expired before serve began.
	if !gone(before, 5*time.Second) {
		t.Fatal("the expired stash is still stored after serve's first sweep")
	}
	// And at the interval: one that expires while serve runs.
	during := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "--name", "during", "--ttl", "10ms")
	if !gone(during, 5*time.Second) {
		t.Fatal("a stash that expired while serve ran is still stored after the next sweeps")
	}
	mustCLI(t, nil, "stat", be, keep)
	code, errs := stop()
	if code != 0 {
		t.Fatalf("serve exit %d: %s", code, errs)
	}
	if strings.Count(errs, "swept expired stashes") < 2 || strings.Contains(errs, "sweeping expired stashes failed") {
		t.Errorf("serve's log of its sweeps:\n%s", errs)
	}
}

func TestServeSweepEveryRefused(t *testing.T) {
	be, _ := backend(t)
	for _, v := range []string{"-1s", "10ms"} {
		_, errs, code := cli(t, nil, "serve", be, "--no-auth", "--listen", "127.0.0.1:0", "--sweep-every", v)
		if code != exitUsage || !strings.Contains(errs, "--sweep-every") {
			t.Errorf("--sweep-every %s: exit %d, %s", v, code, errs)
		}
	}
}

// A failed sweep is logged and tried again; stop waits for the sweep under
// way, and none starts after it; what that cut-short sweep deleted is
// logged, and its cut is no failure.
func TestSweepEveryFailureAndStop(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	calls := make(chan int, 10)
	var n atomic.Int32
	release := make(chan struct{})
	stop := sweepEvery(context.Background(), 10*time.Millisecond, func(ctx context.Context) (int, error) {
		i := int(n.Add(1))
		calls <- i
		switch i {
		case 1:
			return 0, errors.New("the store is down")
		case 2:
			return 3, nil
		default:
			<-release // a sweep under way when stop comes, cut short
			return 2, ctx.Err()
		}
	}, logger)
	for want := 1; want <= 3; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("sweep %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sweep %d never ran", want)
		}
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a sweep was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	if got := n.Load(); got != 3 {
		t.Errorf("%d sweeps, want 3: one started after stop", got)
	}
	out := logs.String()
	if strings.Count(out, "sweeping expired stashes failed") != 1 || !strings.Contains(out, "the store is down") ||
		strings.Count(out, "swept expired stashes") != 2 || !strings.Contains(out, "deleted=3") || !strings.Contains(out, "deleted=2") ||
		strings.Count(out, "\n") != 3 {
		t.Errorf("log:\n%s", out)
	}
}
