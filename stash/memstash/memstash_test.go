package memstash_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

type harness struct {
	store *memstash.Store
	zero  bool // a zero Store instead of one from New
}

var _ stashtest.Harness = (*harness)(nil)

func newHarness(context.Context, testing.TB) (stashtest.Harness, error) { return &harness{}, nil }

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) {
	h.store = memstash.New()
	if h.zero {
		h.store = new(memstash.Store)
	}
	return h.store, nil
}

// Corrupt flips a bit in the middle of the stored bytes.
func (h *harness) Corrupt(ctx context.Context, ns, key string) error {
	a, err := h.store.Stat(ctx, ns, key)
	if err != nil {
		return err
	}
	if !h.store.Corrupt(ns, key, a.StoredSize/2) {
		return fmt.Errorf("memstash: nothing stored under %s/%s to corrupt", ns, key)
	}
	return nil
}

func (h *harness) Close() {}

func TestConformance(t *testing.T) {
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		return newHarness(ctx, t)
	})
}

// The zero Store is as good as New's.
func TestConformanceZeroStore(t *testing.T) {
	stashtest.RunConformanceTests(t, func(context.Context, *testing.T) (stashtest.Harness, error) {
		return &harness{zero: true}, nil
	})
}

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	d, err := stash.OpenDriver(ctx, "mem://")
	if err != nil {
		t.Fatalf("OpenDriver(mem://): %v", err)
	}
	if _, ok := d.(*memstash.Store); !ok {
		t.Errorf("OpenDriver(mem://) gave %T, want *memstash.Store", d)
	}
	for _, u := range []string{"mem://host", "mem:///path", "mem://?size=1"} {
		if _, err := stash.OpenDriver(ctx, u); err == nil {
			t.Errorf("OpenDriver(%q) succeeded, want an error", u)
		}
	}
	e, err := stash.New(stash.WithBackendURL(ctx, "mem://"))
	if err != nil {
		t.Fatalf("stash.New: %v", err)
	}
	defer e.Close()
	s, err := e.Create(ctx, "hello", make([]byte, 1000))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if s.Address.Scheme != memstash.Scheme {
		t.Errorf("address %s, want scheme mem", s)
	}
}

func BenchmarkMemstash(b *testing.B) {
	stashtest.RunBenchmarks(b, newHarness)
}

func BenchmarkFloor(b *testing.B) {
	stashtest.RunFloorBenchmarks(b, newHarness)
}
