package stash_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

// recordingHook wraps drivers with a counting driver and records every
// operation the engine reports.
type recordingHook struct {
	mu      sync.Mutex
	wrapped []string
	puts    int
	ops     []string // "op target -> ok|err"
}

type countingDriver struct {
	driver.Driver
	h *recordingHook
}

func (d countingDriver) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	d.h.mu.Lock()
	d.h.puts++
	d.h.mu.Unlock()
	return d.Driver.Put(ctx, ns, key, r, size, a)
}

func (h *recordingHook) WrapDriver(scheme string, d driver.Driver) driver.Driver {
	h.wrapped = append(h.wrapped, scheme)
	return countingDriver{d, h}
}

type hookKey struct{}

func (h *recordingHook) StartOp(ctx context.Context, op, target string) (context.Context, func(*stash.Stash, error)) {
	ctx = context.WithValue(ctx, hookKey{}, op)
	return ctx, func(s *stash.Stash, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case err != nil:
			h.ops = append(h.ops, op+" "+target+" -> err")
		case s != nil:
			h.ops = append(h.ops, op+" "+target+" -> "+s.Address.Scheme)
		default:
			h.ops = append(h.ops, op+" "+target+" -> ok")
		}
	}
}

func TestHooks(t *testing.T) {
	h := &recordingHook{}
	_, linkOpts, err := links.EngineOptions([]links.Key{{ID: "k", Secret: make([]byte, 32)}}, "https://stash.example/share/")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := memEngine(t, append([]stash.Option{stash.WithHooks(h)}, linkOpts...)...)
	ctx := context.Background()
	if strings.Join(h.wrapped, ",") != memstash.Scheme {
		t.Fatalf("wrapped %v, want the mem backend once", h.wrapped)
	}
	if d, _ := e.Backend(memstash.Scheme); d == nil {
		t.Fatal("no backend")
	} else if _, ok := d.(countingDriver); !ok {
		t.Fatalf("Backend returns %T, want the wrapped driver", d)
	}
	s, err := e.Create(ctx, "a", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Address.String()
	if _, err := e.Retrieve(ctx, addr); err != nil {
		t.Fatal(err)
	}
	r, err := e.Open(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := e.Stat(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Share(ctx, addr, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateFrom(ctx, "b", strings.NewReader("other payload")); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retrieve(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("retrieve after delete: %v", err)
	}
	if _, err := e.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create a -> mem", "retrieve " + addr + " -> mem", "open " + addr + " -> mem", "stat " + addr + " -> mem",
		"share " + addr + " -> ok", "create b -> mem", "delete " + addr + " -> ok", "retrieve " + addr + " -> err",
		"sweep  -> ok",
	}
	if strings.Join(h.ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(h.ops, "\n"), strings.Join(want, "\n"))
	}
	if h.puts != 2 {
		t.Errorf("wrapped driver saw %d puts, want 2", h.puts)
	}
}

func TestWithHooksRefusesNonHook(t *testing.T) {
	if _, err := stash.New(stash.WithHooks(42)); err == nil || !strings.HasPrefix(err.Error(), "stash: ") {
		t.Fatalf("WithHooks(42): %v, want a stash: error", err)
	}
}
