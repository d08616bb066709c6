package ccnats_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newChecker returns a checker over a fresh in-memory stash, and its engine.
func newChecker(t testing.TB, opts ...claimcheck.Option) (*claimcheck.Checker, *stash.Engine) {
	t.Helper()
	eng, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	cc, err := claimcheck.New(eng, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cc, eng
}

// payload returns n pseudo-random (incompressible) bytes from seed.
func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// addresses records the addresses the checker offloads to.
type addresses struct {
	mu   sync.Mutex
	list []string
}

func (a *addresses) Observe(_ context.Context, ev claimcheck.Event) {
	if ev.Op == claimcheck.OpOffload && ev.Err == nil {
		a.mu.Lock()
		a.list = append(a.list, ev.Address)
		a.mu.Unlock()
	}
}

func (a *addresses) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.list...)
}

// equalBody reports a body that differs; it may be called from handlers.
func equalBody(t testing.TB, got, want []byte) bool {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("body differs: got %d bytes, want %d", len(got), len(want))
		return false
	}
	return true
}

// recv waits for one value on ch.
func recv[T any](t testing.TB, ch <-chan T, d time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		var zero T
		t.Fatalf("nothing received in %v", d)
		return zero
	}
}

// quiet is a logger for tests that provoke failures on purpose.
var quiet = slog.New(slog.DiscardHandler)

// failures is a checker observer that sends rehydrate failures to ch.
func failures(ch chan<- error) claimcheck.Option {
	return claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
			ch <- ev.Err
		}
	}))
}
