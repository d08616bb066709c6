package otelstash_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
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

// Drivers with every combination of the optional capabilities.
type (
	base struct{ driver.Driver }
	upd  struct{}
	mod  struct{}
	cdel struct{}
	lst  struct{}
	sgn  struct{}
	vrf  struct{}
)

func (upd) UpdateAttributes(context.Context, string, string, *driver.Attributes) error { return nil }
func (mod) ModifyAttributes(context.Context, string, string, func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	return nil, nil
}
func (cdel) DeleteIf(context.Context, string, string, func(*driver.Attributes) bool) (bool, error) {
	return false, nil
}
func (lst) List(context.Context, func(string, string, *driver.Attributes) error) error { return nil }
func (sgn) SignURL(context.Context, driver.LinkRequest) (string, error) {
	return "https://signed", nil
}
func (vrf) VerifyURL(string, *url.URL, time.Time) error { return nil }

type bpt struct{}

func (bpt) KeepsBytes() bool { return true }

type xpt struct{}

func (xpt) ExclusivePut(int64) bool { return true }

type (
	dB struct {
		base
		bpt
	}
	dUMDLSVB struct {
		base
		upd
		mod
		cdel
		lst
		sgn
		vrf
		bpt
	}
	dX struct {
		base
		xpt
	}
	dBX struct {
		base
		bpt
		xpt
	}
	dUMDLSVBX struct {
		base
		upd
		mod
		cdel
		lst
		sgn
		vrf
		bpt
		xpt
	}
)

type (
	dU struct {
		base
		upd
	}
	dM struct {
		base
		mod
	}
	dUM struct {
		base
		upd
		mod
	}
	dD struct {
		base
		cdel
	}
	dUD struct {
		base
		upd
		cdel
	}
	dMD struct {
		base
		mod
		cdel
	}
	dUMD struct {
		base
		upd
		mod
		cdel
	}
	dL struct {
		base
		lst
	}
	dUL struct {
		base
		upd
		lst
	}
	dML struct {
		base
		mod
		lst
	}
	dUML struct {
		base
		upd
		mod
		lst
	}
	dDL struct {
		base
		cdel
		lst
	}
	dUDL struct {
		base
		upd
		cdel
		lst
	}
	dMDL struct {
		base
		mod
		cdel
		lst
	}
	dUMDL struct {
		base
		upd
		mod
		cdel
		lst
	}
	dS struct {
		base
		sgn
	}
	dUS struct {
		base
		upd
		sgn
	}
	dMS struct {
		base
		mod
		sgn
	}
	dUMS struct {
		base
		upd
		mod
		sgn
	}
	dDS struct {
		base
		cdel
		sgn
	}
	dUDS struct {
		base
		upd
		cdel
		sgn
	}
	dMDS struct {
		base
		mod
		cdel
		sgn
	}
	dUMDS struct {
		base
		upd
		mod
		cdel
		sgn
	}
	dLS struct {
		base
		lst
		sgn
	}
	dULS struct {
		base
		upd
		lst
		sgn
	}
	dMLS struct {
		base
		mod
		lst
		sgn
	}
	dUMLS struct {
		base
		upd
		mod
		lst
		sgn
	}
	dDLS struct {
		base
		cdel
		lst
		sgn
	}
	dUDLS struct {
		base
		upd
		cdel
		lst
		sgn
	}
	dMDLS struct {
		base
		mod
		cdel
		lst
		sgn
	}
	dUMDLS struct {
		base
		upd
		mod
		cdel
		lst
		sgn
	}
	dV struct {
		base
		vrf
	}
	dUV struct {
		base
		upd
		vrf
	}
	dMV struct {
		base
		mod
		vrf
	}
	dUMV struct {
		base
		upd
		mod
		vrf
	}
	dDV struct {
		base
		cdel
		vrf
	}
	dUDV struct {
		base
		upd
		cdel
		vrf
	}
	dMDV struct {
		base
		mod
		cdel
		vrf
	}
	dUMDV struct {
		base
		upd
		mod
		cdel
		vrf
	}
	dLV struct {
		base
		lst
		vrf
	}
	dULV struct {
		base
		upd
		lst
		vrf
	}
	dMLV struct {
		base
		mod
		lst
		vrf
	}
	dUMLV struct {
		base
		upd
		mod
		lst
		vrf
	}
	dDLV struct {
		base
		cdel
		lst
		vrf
	}
	dUDLV struct {
		base
		upd
		cdel
		lst
		vrf
	}
	dMDLV struct {
		base
		mod
		cdel
		lst
		vrf
	}
	dUMDLV struct {
		base
		upd
		mod
		cdel
		lst
		vrf
	}
	dSV struct {
		base
		sgn
		vrf
	}
	dUSV struct {
		base
		upd
		sgn
		vrf
	}
	dMSV struct {
		base
		mod
		sgn
		vrf
	}
	dUMSV struct {
		base
		upd
		mod
		sgn
		vrf
	}
	dDSV struct {
		base
		cdel
		sgn
		vrf
	}
	dUDSV struct {
		base
		upd
		cdel
		sgn
		vrf
	}
	dMDSV struct {
		base
		mod
		cdel
		sgn
		vrf
	}
	dUMDSV struct {
		base
		upd
		mod
		cdel
		sgn
		vrf
	}
	dLSV struct {
		base
		lst
		sgn
		vrf
	}
	dULSV struct {
		base
		upd
		lst
		sgn
		vrf
	}
	dMLSV struct {
		base
		mod
		lst
		sgn
		vrf
	}
	dUMLSV struct {
		base
		upd
		mod
		lst
		sgn
		vrf
	}
	dDLSV struct {
		base
		cdel
		lst
		sgn
		vrf
	}
	dUDLSV struct {
		base
		upd
		cdel
		lst
		sgn
		vrf
	}
	dMDLSV struct {
		base
		mod
		cdel
		lst
		sgn
		vrf
	}
	dUMDLSV struct {
		base
		upd
		mod
		cdel
		lst
		sgn
		vrf
	}
)

func caps(d driver.Driver) string {
	s := ""
	if _, ok := d.(driver.Updater); ok {
		s += "U"
	}
	if _, ok := d.(driver.Modifier); ok {
		s += "M"
	}
	if _, ok := d.(driver.ConditionalDeleter); ok {
		s += "D"
	}
	if _, ok := d.(driver.Lister); ok {
		s += "L"
	}
	if _, ok := d.(driver.Signer); ok {
		s += "S"
	}
	if _, ok := d.(driver.Verifier); ok {
		s += "V"
	}
	if _, ok := d.(driver.BytesKeeper); ok {
		s += "B"
	}
	if _, ok := d.(driver.ExclusivePutter); ok {
		s += "X"
	}
	return s
}

func TestWrapDriverKeepsCapabilities(t *testing.T) {
	tm := newTelemetry(t)
	m := memstash.New()
	b := base{m}
	drivers := []driver.Driver{b, m, dB{base: b}, dUMDLSVB{base: b}, dX{base: b}, dBX{base: b}, dUMDLSVBX{base: b}, dU{base: b}, dM{base: b}, dUM{base: b}, dD{base: b}, dUD{base: b}, dMD{base: b}, dUMD{base: b}, dL{base: b}, dUL{base: b}, dML{base: b}, dUML{base: b}, dDL{base: b}, dUDL{base: b}, dMDL{base: b}, dUMDL{base: b}, dS{base: b}, dUS{base: b}, dMS{base: b}, dUMS{base: b}, dDS{base: b}, dUDS{base: b}, dMDS{base: b}, dUMDS{base: b}, dLS{base: b}, dULS{base: b}, dMLS{base: b}, dUMLS{base: b}, dDLS{base: b}, dUDLS{base: b}, dMDLS{base: b}, dUMDLS{base: b}, dV{base: b}, dUV{base: b}, dMV{base: b}, dUMV{base: b}, dDV{base: b}, dUDV{base: b}, dMDV{base: b}, dUMDV{base: b}, dLV{base: b}, dULV{base: b}, dMLV{base: b}, dUMLV{base: b}, dDLV{base: b}, dUDLV{base: b}, dMDLV{base: b}, dUMDLV{base: b}, dSV{base: b}, dUSV{base: b}, dMSV{base: b}, dUMSV{base: b}, dDSV{base: b}, dUDSV{base: b}, dMDSV{base: b}, dUMDSV{base: b}, dLSV{base: b}, dULSV{base: b}, dMLSV{base: b}, dUMLSV{base: b}, dDLSV{base: b}, dUDLSV{base: b}, dMDLSV{base: b}, dUMDLSV{base: b}}
	for _, d := range drivers {
		w := tm.inst.WrapDriver(memstash.Scheme, d)
		if caps(w) != caps(d) {
			t.Errorf("%T: wrapped has capabilities %q, want %q", d, caps(w), caps(d))
		}
		if w.Scheme() != d.Scheme() {
			t.Errorf("%T: scheme %q, want %q", d, w.Scheme(), d.Scheme())
		}
		if u, ok := w.(interface{ Unwrap() driver.Driver }); !ok || u.Unwrap() != d {
			t.Errorf("%T: Unwrap does not return the wrapped driver", d)
		}
		if s, ok := w.(driver.Signer); ok {
			if u, err := s.SignURL(context.Background(), driver.LinkRequest{Namespace: "ns", Key: "k", Expires: time.Now().Add(time.Minute)}); err != nil || u != "https://signed" {
				t.Errorf("%T: SignURL %q, %v", d, u, err)
			}
		}
	}
	if n := len(tm.ended("mem sign")); n != 34 {
		t.Errorf("%d sign spans, want 34", n)
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
// stored already is measured as such, not as a failure.
func TestWrapDriverPassesExclusivePut(t *testing.T) {
	tm := newTelemetry(t)
	e, err := stash.New(stash.WithBackend(exclusiveMem{memstash.New()}), stash.WithInlineMax(-1), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	payload := stashtest.RandomPayload(1<<10, 3)
	if _, err := e.Create(context.Background(), "x", payload); err != nil {
		t.Fatal(err)
	}
	if n := len(tm.ended("mem stat")); n != 0 {
		t.Errorf("Create of new content: %d stat spans, want 0", n)
	}
	if _, err := e.Create(context.Background(), "x", payload); err != nil {
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
