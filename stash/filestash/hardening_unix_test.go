//go:build unix

package filestash_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
)

// within runs f and fails the test if it has not returned within d (as a
// blocked open would not); it then keeps unblocking the given FIFOs by
// opening them for writing until f returns.
func within(t *testing.T, what string, d time.Duration, fifos []string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("%s did not return within %v: blocked on a FIFO in the store", what, d)
		for {
			for _, p := range fifos {
				// Non-blocking: succeeds only if a reader waits.
				if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// Issue 11, item 7: a FIFO planted in the store as a data or attributes
// file made Retrieve, Stat and Sweep block in open past their context.
func TestFIFOInStoreNeverBlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, dir := newStore(t, filestash.NoSync())
	clock := time.Now()
	e := newEngine(t, s, stash.WithInlineMax(-1), stash.WithClock(func() time.Time { return clock }))
	plant := func(name, file string) (stash.Address, string) {
		st, err := e.Create(ctx, name, []byte("payload of "+name), stash.TTL(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, st.Address.Namespace, filepath.FromSlash(st.Address.Key()), file)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return st.Address, p
	}
	data, dataFIFO := plant("data-fifo", "data")
	attrs, attrsFIFO := plant("attrs-fifo", "attrs.json")
	fifos := []string{dataFIFO, attrsFIFO}
	other, err := e.Create(ctx, "other", []byte("an ordinary stash"), stash.TTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	within(t, "Retrieve of a stash whose data file is a FIFO", 2*time.Second, fifos, func() {
		if _, err := e.Retrieve(ctx, data.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve: %v, want ErrIntegrity", err)
		}
	})
	within(t, "Open of a stash whose attributes file is a FIFO", 2*time.Second, fifos, func() {
		if _, err := e.Open(ctx, attrs.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Open: %v, want ErrIntegrity", err)
		}
	})
	within(t, "Stat of a stash whose attributes file is a FIFO", 2*time.Second, fifos, func() {
		if _, err := e.Stat(ctx, attrs.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Stat: %v, want ErrIntegrity", err)
		}
	})
	clock = clock.Add(2 * time.Minute)
	within(t, "Sweep over a store holding FIFOs", 2*time.Second, fifos, func() {
		n, err := e.Sweep(ctx)
		if err != nil {
			t.Errorf("Sweep: %v", err)
		}
		// The stash with a FIFO for data has readable attributes: it is
		// expired and swept. The one with a FIFO for attributes is not a
		// stash as far as Sweep can tell, and is left alone.
		if n != 2 {
			t.Errorf("Sweep deleted %d stashes, want 2", n)
		}
	})
	if _, err := s.Stat(ctx, other.Address.Namespace, other.Address.Key()); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("the ordinary expired stash survived Sweep: %v", err)
	}
}
