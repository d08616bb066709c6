package otelstash_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// TestConformanceWrapped runs the backend conformance suite over an
// instrumented memstash: the wrapper changes nothing a backend promises.
func TestConformanceWrapped(t *testing.T) {
	tm := newTelemetry(t)
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		return &wrappedHarness{tm: tm}, nil
	})
	if len(tm.ended("mem put")) == 0 || len(tm.ended("mem update")) == 0 || len(tm.ended("mem list")) == 0 {
		t.Errorf("the suite ran without the wrapper seeing puts, updates and lists: %s", tm.names())
	}
}

type wrappedHarness struct {
	tm    *telemetry
	store *memstash.Store
}

func (h *wrappedHarness) Scheme() string { return memstash.Scheme }

func (h *wrappedHarness) MakeDriver(context.Context) (driver.Driver, error) {
	h.store = memstash.New()
	return h.tm.inst.WrapDriver(memstash.Scheme, h.store), nil
}

func (h *wrappedHarness) Corrupt(ctx context.Context, ns, key string) error {
	a, err := h.store.Stat(ctx, ns, key)
	if err != nil {
		return err
	}
	if !h.store.Corrupt(ns, key, a.StoredSize/2) {
		return fmt.Errorf("nothing stored under %s/%s", ns, key)
	}
	return nil
}

func (h *wrappedHarness) Close() {}

// signing is memstash with a stub driver.Signer.
type signing struct{ *memstash.Store }

func (signing) SignURL(context.Context, driver.LinkRequest) (string, error) {
	return "https://signed", nil
}

// TestWrapDriverKeepsCapabilities: the wrapper has the capabilities of the
// driver it wraps (driver.Wrap's own test has 70 combinations), and the
// ones that call the store are measured.
func TestWrapDriverKeepsCapabilities(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	m := memstash.New()
	for _, d := range []driver.Driver{m, signing{m}, struct{ driver.Driver }{m}} {
		w := tm.inst.WrapDriver(memstash.Scheme, d)
		if stashtest.Capabilities(w) != stashtest.Capabilities(d) {
			t.Errorf("%T: wrapped has capabilities %q, want %q", d, stashtest.Capabilities(w), stashtest.Capabilities(d))
		}
		if u, ok := w.(interface{ Unwrap() driver.Driver }); !ok || u.Unwrap() != d {
			t.Errorf("%T: Unwrap does not return the wrapped driver", d)
		}
	}
	if err := m.Put(ctx, "ns", "k", bytes.NewReader([]byte("x")), 1, &driver.Attributes{Size: 1, StoredSize: 1}); err != nil {
		t.Fatal(err)
	}
	w := tm.inst.WrapDriver(memstash.Scheme, signing{m})
	if err := w.(driver.Updater).UpdateAttributes(ctx, "ns", "k", &driver.Attributes{Size: 1, StoredSize: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.(driver.Modifier).ModifyAttributes(ctx, "ns", "k", func(*driver.Attributes) *driver.Attributes { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.(driver.Lister).List(ctx, func(string, string, *driver.Attributes) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if u, err := w.(driver.Signer).SignURL(ctx, driver.LinkRequest{Namespace: "ns", Key: "k", Expires: time.Now().Add(time.Minute)}); err != nil || u != "https://signed" {
		t.Errorf("SignURL %q, %v", u, err)
	}
	if deleted, err := w.(driver.ConditionalDeleter).DeleteIf(ctx, "ns", "k", func(*driver.Attributes) bool { return true }); err != nil || !deleted {
		t.Errorf("DeleteIf %v, %v", deleted, err)
	}
	for _, span := range []string{"mem update", "mem modify", "mem list", "mem sign", "mem delete_if"} {
		if n := len(tm.ended(span)); n != 1 {
			t.Errorf("%d %q spans, want 1", n, span)
		}
	}
}

// countingBytes is memstash counting the Puts that reach it with a reader
// of bytes it may keep.
type countingBytes struct {
	*memstash.Store
	n atomic.Int64
}

func (c *countingBytes) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	if _, ok := r.(*driver.OwnedBytes); ok {
		c.n.Add(1)
	}
	return c.Store.Put(ctx, ns, key, r, size, a)
}

// TestWrapDriverPassesBytesKeeper: behind the wrapper, the engine's Create
// of a large payload reaches the backend's Put with bytes it may keep,
// with the span and the measurement of a put and the trace id in the
// stash's metadata.
func TestWrapDriverPassesBytesKeeper(t *testing.T) {
	tm := newTelemetry(t)
	store := &countingBytes{Store: memstash.New()}
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tm.tracer().Start(context.Background(), "produce")
	payload := stashtest.RandomPayload(1<<20, 9)
	s, err := e.Create(ctx, "bytes", payload)
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	if n := store.n.Load(); n != 1 {
		t.Fatalf("%d Puts of bytes to keep reached the backend, want 1", n)
	}
	put := tm.one(t, "mem put")
	if put.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Error("put span is not part of the trace")
	}
	if n, _ := tm.hist(t, otelstash.MetricBackendDuration, otelstash.KeyBackendCall.String(otelstash.CallPut)); n != 1 {
		t.Errorf("%d put measurements, want 1", n)
	}
	a, err := store.Stat(context.Background(), s.Address.Namespace, s.Address.Key())
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Metadata[otelstash.MetadataTraceID]; got != parent.SpanContext().TraceID().String() {
		t.Errorf("trace id in metadata %q, want %q", got, parent.SpanContext().TraceID())
	}
	got, err := e.Retrieve(context.Background(), s.String())
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve: %v", err)
	}
}

// exclusiveMem is memstash as a driver.ExclusivePutter: its Put answers
// ErrExists for a key that holds an object.
type exclusiveMem struct{ *memstash.Store }

func (exclusiveMem) ExclusivePut(int64) bool { return true }

// TestWrapDriverPassesExclusivePut: behind the wrapper, the engine creates
// new content with a put and no stat, and a put that finds the content
// stored already (by another engine) is measured as such, not as a
// failure.
func TestWrapDriverPassesExclusivePut(t *testing.T) {
	tm := newTelemetry(t)
	store := exclusiveMem{memstash.New()}
	engine := func() *stash.Engine {
		e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), tm.inst.EngineOption())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	payload := stashtest.RandomPayload(1<<10, 3)
	if _, err := engine().Create(context.Background(), "x", payload); err != nil {
		t.Fatal(err)
	}
	if n := len(tm.ended("mem stat")); n != 0 {
		t.Errorf("Create of new content: %d stat spans, want 0", n)
	}
	if _, err := engine().Create(context.Background(), "x", payload); err != nil {
		t.Fatal(err)
	}
	if n := len(tm.ended("mem stat")); n != 1 {
		t.Errorf("Create of stored content: %d stat spans, want 1 (after the put)", n)
	}
	put := otelstash.KeyBackendCall.String(otelstash.CallPut)
	for _, c := range []struct {
		outcome string
		want    uint64
	}{{otelstash.OutcomeOK, 1}, {otelstash.OutcomeExists, 1}, {otelstash.OutcomeFailed, 0}} {
		if n, _ := tm.hist(t, otelstash.MetricBackendDuration, put, otelstash.KeyOutcome.String(c.outcome)); n != c.want {
			t.Errorf("%d put measurements with outcome %s, want %d", n, c.outcome, c.want)
		}
	}
	for _, s := range tm.ended("mem put") {
		if s.Status().Code == codes.Error {
			t.Errorf("put span with an error status: %v", s.Status())
		}
	}
}
