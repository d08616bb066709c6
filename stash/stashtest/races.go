package stashtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// The races below are between the engine's reads of a stash's attributes
// and its writes: the suite widens the window between the two with a
// driver wrapper whose Stat or List runs a hook first, so that each race
// happens on every run instead of one run in twenty. What the backend does
// inside its own calls (driver.Modifier, driver.ConditionalDeleter) is not
// wrapped: its guarantee is what is tested.

// hooked wraps a driver, running hooks in Stat and in List's callback.
// driver.Wrap gives it the driver's optional capabilities, so that the
// races run through the write path the engine takes with the backend.
type hooked struct {
	driver.Driver
	onStat func()
	onList func(ns, key string)
}

func (h *hooked) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	a, err := h.Driver.Stat(ctx, ns, key)
	if h.onStat != nil {
		h.onStat()
	}
	return a, err
}

// List is called only for a driver.Lister (driver.Wrap).
func (h *hooked) List(ctx context.Context, fn func(ns, key string, a *driver.Attributes) error) error {
	return h.Driver.(driver.Lister).List(ctx, func(ns, key string, a *driver.Attributes) error {
		if h.onList != nil {
			h.onList(ns, key)
		}
		return fn(ns, key, a)
	})
}

// hook wraps f's driver with the same optional capabilities, and returns an
// engine over it with f's clock.
func hook(t *testing.T, f *fixture, h *hooked) *stash.Engine {
	t.Helper()
	h.Driver = f.d
	d := driver.Wrap(h, f.d)
	e, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1), stash.WithClock(f.clock.Now), stash.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// canExtend reports whether the backend keeps extended expiries at all;
// without driver.Updater a second Create keeps the first expiry, and none
// of these races exist.
func canExtend(f *fixture) bool {
	_, u := f.d.(driver.Updater)
	_, l := f.d.(driver.Lister)
	return u && l
}

// testMonotonicExtend: concurrent Creates of one payload with different
// TTLs. Each is told the expiry the stash has; the stash must end up with
// the latest of them, never an earlier one that a concurrent Create wrote
// over it (issue 11, item 5).
func testMonotonicExtend(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	if !canExtend(f) {
		t.Log("backend cannot extend expiries: nothing to race")
		return
	}
	// Every Create reads the old attributes, then waits for the others to
	// have read them too, before it writes.
	const n = 8
	var gate sync.WaitGroup
	var stats atomic.Int32
	e := hook(t, f, &hooked{onStat: func() {
		if stats.Add(1) <= n {
			gate.Done()
			gate.Wait()
		}
	}})
	payload := JSONPayload(20_000, 51)
	for round := range 3 {
		name := fmt.Sprintf("extend-%d", round)
		first, err := f.e.Create(f.ctx, name, payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		stats.Store(0)
		gate.Add(n)
		told := make([]time.Time, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := e.Create(f.ctx, name, payload, stash.TTL(time.Duration(2+i)*time.Hour))
				errs[i] = err
				if err == nil {
					told[i] = s.ExpiresAt
				}
			}()
		}
		wg.Wait()
		latest := time.Time{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: Create %d: %v", round, i, errs[i])
			}
			if told[i].After(latest) {
				latest = told[i]
			}
		}
		if want := epoch.Add(time.Duration(n+1) * time.Hour); !latest.Equal(want) {
			t.Errorf("round %d: the latest expiry any Create was told is %v, want %v", round, latest, want)
		}
		got, err := f.e.Stat(f.ctx, first.String())
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if got.ExpiresAt.Before(latest) {
			t.Errorf("round %d: %d concurrent Creates were told the stash lives until %v; it is stored until %v", round, n, latest, got.ExpiresAt)
		}
	}
}

// testSweepVsCreate: a Create of the same content renews an expired stash
// after Sweep listed it and before Sweep deletes it; the renewed stash must
// survive (issue 11, item 4).
func testSweepVsCreate(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	if !canExtend(f) {
		t.Log("backend cannot extend expiries: nothing to race")
		return
	}
	payload := JSONPayload(20_000, 52)
	var renewed *stash.Stash
	var renewErr error
	var once sync.Once
	s, err := f.e.Create(f.ctx, "swept", payload, stash.TTL(time.Minute))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	live, err := f.e.Create(f.ctx, "live", payload, stash.TTL(time.Minute))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	f.clock.Advance(2 * time.Minute)
	wrapped := hook(t, f, &hooked{onList: func(ns, key string) {
		if key != s.Address.Key() {
			return
		}
		once.Do(func() { renewed, renewErr = f.e.Create(f.ctx, "swept", payload, stash.TTL(time.Hour)) })
	}})
	n, err := wrapped.Sweep(f.ctx)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if renewErr != nil {
		t.Fatalf("Create during Sweep: %v", renewErr)
	}
	if renewed == nil {
		t.Fatal("Sweep never listed the expired stash")
	}
	if n != 1 {
		t.Errorf("Sweep deleted %d stashes, want 1 (the other expired one)", n)
	}
	expectLive(t, f, renewed.String(), payload)
	_, err = f.d.Stat(f.ctx, live.Address.Namespace, live.Address.Key())
	wantErr(t, "driver Stat of the swept stash", err, driver.ErrNotFound)
}

// testCreateVsDelete: a Delete removes the stash after a Create found it
// and before it extends its expiry. Create must write it afresh, never
// fail with ErrNotFound or return an address with nothing behind it
// (issue 11, item 6).
func testCreateVsDelete(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	if !canExtend(f) {
		t.Log("backend cannot extend expiries: nothing to race")
		return
	}
	payload := JSONPayload(20_000, 53)
	s, err := f.e.Create(f.ctx, "deleted", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	f.clock.Advance(time.Minute)
	var once sync.Once
	var delErr error
	e := hook(t, f, &hooked{onStat: func() { once.Do(func() { delErr = f.e.Delete(f.ctx, s.String()) }) }})
	again, err := e.Create(f.ctx, "deleted", payload, stash.TTL(time.Hour))
	if delErr != nil {
		t.Fatalf("Delete: %v", delErr)
	}
	if err != nil {
		t.Fatalf("Create racing a Delete: %v", err)
	}
	if errors.Is(err, stash.ErrNotFound) {
		t.Fatal("Create returned ErrNotFound")
	}
	expectLive(t, f, again.String(), payload)
	if want := f.clock.Now().Add(time.Hour); !again.ExpiresAt.Equal(want) {
		t.Errorf("Create written afresh reports ExpiresAt %v, want %v", again.ExpiresAt, want)
	}
}
