package otelstash_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newMem is an instrumented engine over memstash and a checker over it
// that offloads above 4 KiB.
func newMem(t testing.TB, tm *telemetry, opts ...claimcheck.Option) (*stash.Engine, *claimcheck.Checker, *memstash.Store) {
	t.Helper()
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, append([]claimcheck.Option{claimcheck.WithThreshold(4 << 10), tm.inst.CheckerOption()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e, c, store
}

var (
	opOffload   = semconv.MessagingOperationName(claimcheck.OpOffload)
	opRehydrate = semconv.MessagingOperationName(claimcheck.OpRehydrate)
)

func outcome(o string) attribute.KeyValue     { return otelstash.KeyOutcome.String(o) }
func semconvOp(op string) attribute.KeyValue  { return semconv.MessagingOperationName(op) }
func destination(d string) attribute.KeyValue { return semconv.MessagingDestinationName(d) }
func reason(r string) attribute.KeyValue      { return semconv.ErrorTypeKey.String(r) }

// TestMessagesAndSpans sends what a transport would: 3 small messages and
// 2 big ones (one compressible), under a publish span, and receives them
// under process spans made from the headers alone.
func TestMessagesAndSpans(t *testing.T) {
	tm := newTelemetry(t)
	e, c, _ := newMem(t, tm)
	ctx := context.Background()

	type sent struct {
		body []byte
		h    claimcheck.MapHeaders
	}
	var out []sent
	bodies := [][]byte{[]byte("a"), []byte("bb"), []byte("ccc"), random(64 << 10), bytes.Repeat([]byte("z"), 32<<10)}
	pubCtx, publish := tm.tracer().Start(ctx, "orders publish")
	for _, b := range bodies {
		h := claimcheck.MapHeaders{}
		body, _, err := c.Offload(pubCtx, "orders", b, h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sent{body, h})
	}
	publish.End()

	if got := tm.sum(t, otelstash.MetricMessages, opOffload, outcome(otelstash.OutcomePassed)); got != 3 {
		t.Errorf("passed: %d, want 3", got)
	}
	if got := tm.sum(t, otelstash.MetricMessages, opOffload, outcome(otelstash.OutcomeOffloaded), semconv.MessagingDestinationName("orders"), otelstash.KeyScheme.String("mem")); got != 2 {
		t.Errorf("offloaded: %d, want 2", got)
	}
	if got, want := tm.sum(t, otelstash.MetricOffloadPayload), int64(96<<10); got != want {
		t.Errorf("offloaded bytes: %d, want %d", got, want)
	}
	stored := tm.sum(t, otelstash.MetricOffloadStored)
	if stored <= 64<<10 || stored >= 96<<10 {
		t.Errorf("stored bytes: %d, want the random 64 KiB plus a compressed 32 KiB", stored)
	}
	if n, s := tm.hist(t, otelstash.MetricCompressionRatio); n != 2 || s >= 1.5 || s <= 1 {
		t.Errorf("compression ratio: %d points summing to %.3f, want 2 (about 1 and far below 1)", n, s)
	}
	if n, _ := tm.hist(t, otelstash.MetricMessageDuration, opOffload); n != 2 {
		t.Errorf("offload latency points: %d, want 2", n)
	}

	// Spans: two offloads under the publish span, each with an engine create
	// under it and a backend put under that.
	offloads := tm.ended("offload orders")
	if len(offloads) != 2 {
		t.Fatalf("%d offload spans, want 2 (%s)", len(offloads), tm.names())
	}
	pub := tm.one(t, "orders publish")
	creates := tm.ended("stash create")
	puts := tm.ended("mem put")
	if len(creates) != 2 || len(puts) != 2 {
		t.Fatalf("%d creates, %d puts; want 2 each (%s)", len(creates), len(puts), tm.names())
	}
	for k := range 2 {
		childOf(t, offloads[k], pub)
		childOf(t, creates[k], offloads[k])
		childOf(t, puts[k], creates[k])
		if got := attr(creates[k], otelstash.KeyScheme).AsString(); got != "mem" {
			t.Errorf("create scheme %q", got)
		}
		if got := attr(creates[k], otelstash.KeyNamespace).AsString(); got != "default" {
			t.Errorf("create namespace %q", got)
		}
		if got := attr(offloads[k], otelstash.KeyOutcome).AsString(); got != otelstash.OutcomeOffloaded {
			t.Errorf("offload outcome %q", got)
		}
	}
	if got := attr(creates[1], otelstash.KeyEncoding).AsString(); got != "zstd" {
		t.Errorf("encoding of the compressible payload: %q", got)
	}
	if got := attr(creates[1], otelstash.KeySize).AsInt64(); got != 32<<10 {
		t.Errorf("create size %d", got)
	}
	if got := attr(creates[1], otelstash.KeyStoredSize).AsInt64(); got <= 0 || got >= 4<<10 {
		t.Errorf("create stored size %d", got)
	}

	// The offloaded messages carry the offload span's context in W3C
	// traceparent, and nothing claimstash-specific beyond the contract.
	for k, s := range out[3:] {
		tp, ok := s.h.Get("traceparent")
		want := "00-" + offloads[k].SpanContext().TraceID().String() + "-" + offloads[k].SpanContext().SpanID().String() + "-01"
		if !ok || tp != want {
			t.Errorf("message %d traceparent %q, want %q", k, tp, want)
		}
		for key := range s.h {
			if key != "traceparent" && key != claimcheck.HeaderVersion && key != claimcheck.HeaderSize {
				t.Errorf("message %d has header %q", k, key)
			}
		}
		// The stash records the producer's trace id.
		st, err := e.Stat(ctx, string(s.body))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Metadata[otelstash.MetadataTraceID]; got != pub.SpanContext().TraceID().String() {
			t.Errorf("stash metadata trace id %q, want %s", got, pub.SpanContext().TraceID())
		}
	}
	for _, s := range out[:3] {
		if _, ok := s.h.Get("traceparent"); ok {
			t.Error("a message that passed through got a traceparent")
		}
	}

	// Consume without any transport instrumentation: the rehydrate spans
	// continue the producer's trace from the headers.
	for k, s := range out {
		got, _, err := c.Rehydrate(ctx, "orders", s.body, s.h)
		if err != nil || !bytes.Equal(got, bodies[k]) {
			t.Fatalf("rehydrate %d: %v", k, err)
		}
	}
	if got := tm.sum(t, otelstash.MetricMessages, opRehydrate, outcome(otelstash.OutcomePlain)); got != 3 {
		t.Errorf("plain: %d, want 3", got)
	}
	if got := tm.sum(t, otelstash.MetricMessages, opRehydrate, outcome(otelstash.OutcomeRehydrated)); got != 2 {
		t.Errorf("rehydrated: %d, want 2", got)
	}
	if got, want := tm.sum(t, otelstash.MetricRehydratePayload), int64(96<<10); got != want {
		t.Errorf("rehydrated bytes: %d, want %d", got, want)
	}
	rehydrates := tm.ended("rehydrate orders")
	if len(rehydrates) != 2 {
		t.Fatalf("%d rehydrate spans, want 2", len(rehydrates))
	}
	for k := range 2 {
		childOf(t, rehydrates[k], offloads[k])
	}
	if n := len(tm.ended("stash retrieve")); n != 2 {
		t.Errorf("%d retrieve spans, want 2", n)
	}
	if n, _ := tm.hist(t, otelstash.MetricStashDuration, otelstash.KeyStashOp.String(stash.OpRetrieve), otelstash.KeyScheme.String("mem"), outcome(otelstash.OutcomeOK)); n != 2 {
		t.Errorf("retrieve latency points: %d, want 2", n)
	}
	if n, _ := tm.hist(t, otelstash.MetricBackendDuration, otelstash.KeyBackendCall.String(otelstash.CallGet), otelstash.KeyScheme.String("mem")); n != 2 {
		t.Errorf("backend get latency points: %d, want 2", n)
	}
}

// blocking is a driver whose Get waits for its context.
type blocking struct{ driver.Driver }

func (b blocking) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	<-ctx.Done()
	return nil, nil, ctx.Err()
}

// failingPut is a driver whose Put fails.
type failingPut struct{ driver.Driver }

func (failingPut) Put(context.Context, string, string, io.Reader, int64, *driver.Attributes) error {
	return errors.New("disk full")
}

func TestOffloadFailure(t *testing.T) {
	tm := newTelemetry(t)
	e, err := stash.New(stash.WithBackend(failingPut{memstash.New()}), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), tm.inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	h := claimcheck.MapHeaders{}
	if _, _, err := c.Offload(context.Background(), "t", random(1<<10), h); err == nil {
		t.Fatal("offload to a failing backend succeeded")
	}
	if len(h) != 0 {
		t.Errorf("headers after a failed offload: %v, want none", h)
	}
	if got := tm.sum(t, otelstash.MetricMessages, opOffload, outcome(otelstash.OutcomeFailed), reason(otelstash.ReasonBackend)); got != 1 {
		t.Errorf("offload failures: %d, want 1", got)
	}
	off := tm.one(t, "offload t")
	if off.Status().Code.String() != "Error" || len(off.Events()) == 0 {
		t.Errorf("offload span status %v, %d events; want Error with the error recorded", off.Status(), len(off.Events()))
	}
	put := tm.one(t, "mem put")
	childOf(t, put, tm.one(t, "stash create"))
	if got := attr(put, otelstash.KeyOutcome).AsString(); got != otelstash.OutcomeFailed {
		t.Errorf("put outcome %q", got)
	}
}

// failing is a driver whose Get fails.
type failing struct{ driver.Driver }

func (failing) Get(context.Context, string, string) (io.ReadCloser, *driver.Attributes, error) {
	return nil, nil, errors.New("disk on fire")
}

func TestFailuresByReason(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store), stash.WithClock(now), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), tm.inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	offload := func(opts ...stash.CreateOption) ([]byte, claimcheck.MapHeaders) {
		h := claimcheck.MapHeaders{}
		body, _, err := c.Offload(ctx, "t", random(1<<10), h)
		if err != nil {
			t.Fatal(err)
		}
		return body, h
	}
	rehydrate := func(c *claimcheck.Checker, ctx context.Context, body []byte, h claimcheck.MapHeaders, want error) {
		t.Helper()
		if _, _, err := c.Rehydrate(ctx, "t", body, h); !errors.Is(err, want) {
			t.Fatalf("rehydrate: %v, want %v", err, want)
		}
	}

	// not found
	body, h := offload()
	if err := e.Delete(ctx, string(body)); err != nil {
		t.Fatal(err)
	}
	rehydrate(c, ctx, body, h, stash.ErrNotFound)
	// integrity: the size header lies
	body, h = offload()
	h[claimcheck.HeaderSize] = "5"
	rehydrate(c, ctx, body, h, stash.ErrIntegrity)
	// not allowed: another namespace
	other, _ := claimcheck.New(e, claimcheck.WithNamespace("elsewhere"), tm.inst.CheckerOption())
	body, h = offload()
	rehydrate(other, ctx, body, h, claimcheck.ErrNotAllowed)
	// expired
	ttl, _ := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), claimcheck.WithStashOptions(stash.TTL(time.Minute)), tm.inst.CheckerOption())
	h = claimcheck.MapHeaders{}
	body, _, err = ttl.Offload(ctx, "t", random(1<<10), h)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	rehydrate(c, ctx, body, h, stash.ErrExpired)
	// timeout and backend, on engines whose backend blocks or fails
	for _, tc := range []struct {
		d    driver.Driver
		want error
	}{{blocking{store}, context.DeadlineExceeded}, {failing{store}, nil}} {
		e2, err := stash.New(stash.WithBackend(tc.d), tm.inst.EngineOption())
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := claimcheck.New(e2, claimcheck.WithMode(claimcheck.Always), tm.inst.CheckerOption())
		h = claimcheck.MapHeaders{}
		body, _, err = c2.Offload(ctx, "t", random(1<<10), h)
		if err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, _, err = c2.Rehydrate(tctx, "t", body, h)
		cancel()
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Fatalf("rehydrate: %v, want %v", err, tc.want)
		}
	}
	for _, r := range []string{otelstash.ReasonNotFound, otelstash.ReasonIntegrity, otelstash.ReasonNotAllowed, otelstash.ReasonExpired, otelstash.ReasonTimeout, otelstash.ReasonBackend} {
		if got := tm.sum(t, otelstash.MetricMessages, opRehydrate, outcome(otelstash.OutcomeFailed), reason(r)); got != 1 {
			t.Errorf("rehydrate failures %s: %d, want 1", r, got)
		}
	}
	if got := tm.sum(t, otelstash.MetricMessages, opRehydrate, outcome(otelstash.OutcomeFailed)); got != 6 {
		t.Errorf("rehydrate failures: %d, want 6", got)
	}
	fails := 0
	for _, s := range tm.ended("rehydrate t") {
		if s.Status().Code.String() == "Error" {
			fails++
			if attr(s, semconv.ErrorTypeKey).AsString() == "" {
				t.Errorf("failed span without error.type")
			}
		}
	}
	if fails != 6 {
		t.Errorf("%d failed rehydrate spans, want 6", fails)
	}
}

func TestShareLinks(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	signer, linkOpts, err := links.EngineOptions([]links.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}, "https://stash.example/share/")
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackend(memstash.New()), tm.inst.EngineOption()}, linkOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Create(ctx, "doc", random(1<<10))
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, s.Address.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Share(ctx, "mem://default/missing."+strings.Repeat("0", 64), time.Minute); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("share of a missing stash: %v", err)
	}
	h := links.NewHandler(e, signer)
	srv := httptest.NewServer(tm.inst.ShareHandler(h))
	defer srv.Close()
	path := strings.TrimPrefix(link, "https://stash.example")
	for _, p := range []string{path, strings.Replace(path, "sig=", "sig=A", 1)} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A tampered link handed to the engine is refused too.
	if _, err := e.Retrieve(ctx, strings.Replace(link, "sig=", "sig=A", 1)); !errors.Is(err, stash.ErrForbidden) {
		t.Fatalf("retrieve of a tampered link: %v", err)
	}
	if got := tm.sum(t, otelstash.MetricShareLinks, outcome(otelstash.OutcomeIssued)); got != 1 {
		t.Errorf("links issued: %d, want 1", got)
	}
	if got := tm.sum(t, otelstash.MetricShareLinks, outcome(otelstash.OutcomeRefused)); got != 2 {
		t.Errorf("links refused: %d, want 2 (the handler's 403 and the engine's)", got)
	}
	shares := tm.ended("stash share")
	if len(shares) != 2 || shares[0].Status().Code.String() != "Unset" || attr(shares[1], semconv.ErrorTypeKey).AsString() != otelstash.ReasonNotFound {
		t.Errorf("share spans: %v", shares)
	}
}

func TestSweepAndDeleteAfterAck(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	e, c, _ := newMem(t, tm, claimcheck.DeleteAfterAck(), claimcheck.WithMode(claimcheck.Always))
	h := claimcheck.MapHeaders{}
	body, _, err := c.Offload(ctx, "t", random(1<<10), h)
	if err != nil {
		t.Fatal(err)
	}
	_, addr, err := c.Rehydrate(ctx, "t", body, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Acked(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	del := tm.one(t, "delete")
	childOf(t, tm.one(t, "stash delete"), del)
	childOf(t, tm.one(t, "mem delete"), tm.one(t, "stash delete"))
	childOf(t, tm.one(t, "mem list"), tm.one(t, "stash sweep"))
	if got := tm.sum(t, otelstash.MetricMessages, semconv.MessagingOperationName(claimcheck.OpDelete), outcome(otelstash.OutcomeDeleted)); got != 1 {
		t.Errorf("deleted after ack: %d, want 1", got)
	}
}

// TestNoopProviders: with no-op providers nothing is recorded and nothing
// fails; headers get no trace context (there is none).
func TestNoopProviders(t *testing.T) {
	inst, err := otelstash.New(otelstash.WithTracerProvider(tracenoop.NewTracerProvider()), otelstash.WithMeterProvider(noop.NewMeterProvider()))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(memstash.New()), inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	h := claimcheck.MapHeaders{}
	body, _, err := c.Offload(context.Background(), "t", []byte("payload"), h)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h["traceparent"]; ok {
		t.Errorf("traceparent set with no trace: %v", h)
	}
	if got, _, err := c.Rehydrate(context.Background(), "t", body, h); err != nil || string(got) != "payload" {
		t.Fatalf("rehydrate: %q, %v", got, err)
	}
}

func TestReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", stash.ErrExpired), otelstash.ReasonExpired},
		{fmt.Errorf("x: %w", stash.ErrNotFound), otelstash.ReasonNotFound},
		{fmt.Errorf("x: %w", stash.ErrIntegrity), otelstash.ReasonIntegrity},
		{fmt.Errorf("x: %w", claimcheck.ErrNotAllowed), otelstash.ReasonNotAllowed},
		{fmt.Errorf("x: %w", stash.ErrForbidden), otelstash.ReasonNotAllowed},
		{fmt.Errorf("x: %w", stash.ErrTooLarge), otelstash.ReasonTooLarge},
		{fmt.Errorf("x: %w", stash.ErrInvalidAddress), otelstash.ReasonInvalid},
		{fmt.Errorf("x: %w", claimcheck.ErrMalformed), otelstash.ReasonInvalid},
		{fmt.Errorf("x: %w", claimcheck.ErrUnsupportedVersion), otelstash.ReasonInvalid},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), otelstash.ReasonTimeout},
		{fmt.Errorf("x: %w", context.Canceled), otelstash.ReasonCanceled},
		{errors.New("connection refused"), otelstash.ReasonBackend},
	} {
		if got := otelstash.Reason(c.err); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
