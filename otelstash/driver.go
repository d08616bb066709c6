package otelstash

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/stash/driver"
)

// Backend calls (KeyBackendCall values): the driver.Driver methods and
// its optional capabilities.
const (
	CallPut      = "put"
	CallGet      = "get"
	CallStat     = "stat"
	CallDelete   = "delete"
	CallUpdate   = "update"    // driver.Updater
	CallModify   = "modify"    // driver.Modifier
	CallDeleteIf = "delete_if" // driver.ConditionalDeleter
	CallList     = "list"      // driver.Lister
	CallSign     = "sign"      // driver.Signer
)

//go:generate go run ./internal/gencaps

// WrapDriver implements stash.DriverHook: it returns d instrumented, with
// a client span ("s3 put", "nats get", ...) and a MetricBackendDuration
// measurement per call, and exactly the optional capabilities
// (driver.Updater, driver.Modifier, driver.ConditionalDeleter,
// driver.Lister, driver.Signer, driver.Verifier, driver.BytesKeeper,
// driver.ExclusivePutter) that d has. A Put that is
// part of a trace (its context carries a span: the engine's create, the
// producer's offload) records the trace id in the stash's metadata
// (MetadataTraceID); the payload, its digest and its address are
// unchanged.
// Get's span ends when Get returns, before the bytes are read.
func (i *Instrumentation) WrapDriver(scheme string, d driver.Driver) driver.Driver {
	if i == nil {
		return d
	}
	return withCapabilities(&wrapped{d: d, i: i, scheme: scheme}, d)
}

// wrapped instruments the Driver methods.
type wrapped struct {
	d      driver.Driver
	i      *Instrumentation
	scheme string
}

// Unwrap returns the driver that was wrapped.
func (w *wrapped) Unwrap() driver.Driver { return w.d }

// start opens the span of one call.
func (w *wrapped) start(ctx context.Context, call, ns, key string) (context.Context, trace.Span, time.Time) {
	ctx, span := startSpan(w.i.tracer, ctx, w.scheme+" "+call, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(KeyBackendCall.String(call), KeyScheme.String(w.scheme), KeyNamespace.String(ns), KeyStashKey.String(key)))
	return ctx, span, time.Now()
}

// end records the call's latency and ends its span.
func (w *wrapped) end(ctx context.Context, span trace.Span, start time.Time, call string, a *driver.Attributes, err error) {
	defer contained("backend call measurement")
	outcome, reason := OutcomeOK, Reason(err)
	switch {
	case reason == ReasonNotFound:
		// An answer, not a failure: the engine asks before every write.
		outcome, reason, err = OutcomeNotFound, "", nil
	case call == CallPut && errors.Is(err, driver.ErrExists):
		// An answer too: content stored already, which the engine
		// then extends (a driver.ExclusivePutter's Put is the
		// engine's only look before it writes).
		outcome, reason, err = OutcomeExists, "", nil
	case err != nil:
		outcome = OutcomeFailed
	}
	w.i.backendDuration.Record(ctx, since(start), w.i.opts(setKey{kind: kindBackend, op: call, scheme: w.scheme, outcome: outcome, reason: reason}).rec...)
	if span.IsRecording() {
		attrs := []attribute.KeyValue{KeyOutcome.String(outcome)}
		if a != nil {
			attrs = append(attrs, KeySize.Int64(a.Size), KeyStoredSize.Int64(a.StoredSize), KeyEncoding.String(encoding(a.Encoding)))
		}
		span.SetAttributes(attrs...)
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(reason))
			recordError(span, err)
		}
	}
	span.End()
}

func (w *wrapped) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	ctx, span, start, a := w.startPut(ctx, ns, key, a)
	err := w.d.Put(ctx, ns, key, r, size, a)
	w.end(ctx, span, start, CallPut, a, err)
	return err
}

// startPut opens the span of a Put and returns the attributes
// to put: tagged with the trace id if the call is part of a trace.
func (w *wrapped) startPut(ctx context.Context, ns, key string, a *driver.Attributes) (context.Context, trace.Span, time.Time, *driver.Attributes) {
	traced := trace.SpanContextFromContext(ctx).IsValid()
	ctx, span, start := w.start(ctx, CallPut, ns, key)
	if sc := span.SpanContext(); traced && sc.HasTraceID() && a != nil {
		tagged := *a
		tagged.Metadata = maps.Clone(a.Metadata)
		if tagged.Metadata == nil {
			tagged.Metadata = map[string]string{}
		}
		tagged.Metadata[MetadataTraceID] = sc.TraceID().String()
		a = &tagged
		span.SetAttributes(KeyMetadataTrace.String(sc.TraceID().String()))
	}
	return ctx, span, start, a
}

func (w *wrapped) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	ctx, span, start := w.start(ctx, CallGet, ns, key)
	rc, a, err := w.d.Get(ctx, ns, key)
	w.end(ctx, span, start, CallGet, a, err)
	return rc, a, err
}

func (w *wrapped) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	ctx, span, start := w.start(ctx, CallStat, ns, key)
	a, err := w.d.Stat(ctx, ns, key)
	w.end(ctx, span, start, CallStat, a, err)
	return a, err
}

func (w *wrapped) Delete(ctx context.Context, ns, key string) error {
	ctx, span, start := w.start(ctx, CallDelete, ns, key)
	err := w.d.Delete(ctx, ns, key)
	w.end(ctx, span, start, CallDelete, nil, err)
	return err
}

func (w *wrapped) Scheme() string { return w.d.Scheme() }

func (w *wrapped) Close() error { return w.d.Close() }

// bytesKeeper passes on driver.BytesKeeper; the writes themselves go
// through the wrapper's Put, which hands the driver.OwnedBytes reader on.
type bytesKeeper struct {
	w  *wrapped
	bk driver.BytesKeeper
}

func (b bytesKeeper) KeepsBytes() bool { return b.bk.KeepsBytes() }

// exclusivePutter passes on driver.ExclusivePutter: a question about the
// driver's writes, answered without a call to its store.
type exclusivePutter struct {
	w *wrapped
	x driver.ExclusivePutter
}

func (x exclusivePutter) ExclusivePut(size int64) bool { return x.x.ExclusivePut(size) }

type updater struct {
	w *wrapped
	u driver.Updater
}

func (u updater) UpdateAttributes(ctx context.Context, ns, key string, a *driver.Attributes) error {
	ctx, span, start := u.w.start(ctx, CallUpdate, ns, key)
	err := u.u.UpdateAttributes(ctx, ns, key, a)
	u.w.end(ctx, span, start, CallUpdate, a, err)
	return err
}

type lister struct {
	w *wrapped
	l driver.Lister
}

func (l lister) List(ctx context.Context, fn func(ns, key string, a *driver.Attributes) error) error {
	ctx, span, start := l.w.start(ctx, CallList, "", "")
	n := 0
	err := l.l.List(ctx, func(ns, key string, a *driver.Attributes) error {
		n++
		return fn(ns, key, a)
	})
	span.SetAttributes(attribute.Int("claimstash.backend.listed", n))
	l.w.end(ctx, span, start, CallList, nil, err)
	return err
}

type signer struct {
	w *wrapped
	s driver.Signer
}

func (s signer) SignURL(ctx context.Context, r driver.LinkRequest) (string, error) {
	ctx, span, start := s.w.start(ctx, CallSign, r.Namespace, r.Key)
	u, err := s.s.SignURL(ctx, r)
	s.w.end(ctx, span, start, CallSign, nil, err)
	return u, err
}

type deleter struct {
	w  *wrapped
	cd driver.ConditionalDeleter
}

func (d deleter) DeleteIf(ctx context.Context, ns, key string, cond func(have *driver.Attributes) bool) (bool, error) {
	ctx, span, start := d.w.start(ctx, CallDeleteIf, ns, key)
	deleted, err := d.cd.DeleteIf(ctx, ns, key, cond)
	span.SetAttributes(attribute.Bool("claimstash.backend.deleted", deleted))
	d.w.end(ctx, span, start, CallDeleteIf, nil, err)
	return deleted, err
}

type modifier struct {
	w *wrapped
	m driver.Modifier
}

func (m modifier) ModifyAttributes(ctx context.Context, ns, key string, fn func(have *driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	ctx, span, start := m.w.start(ctx, CallModify, ns, key)
	a, err := m.m.ModifyAttributes(ctx, ns, key, fn)
	m.w.end(ctx, span, start, CallModify, a, err)
	return a, err
}

// verifier forwards driver.Verifier: checking a link is local and quick,
// so it gets no span of its own.
type verifier struct {
	w *wrapped
	v driver.Verifier
}

func (v verifier) VerifyURL(method string, u *url.URL, now time.Time) error {
	return v.v.VerifyURL(method, u, now)
}
