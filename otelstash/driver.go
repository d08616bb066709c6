package otelstash

import (
	"context"
	"errors"
	"io"
	"maps"
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
	return driver.Wrap(&wrapped{d: d, i: i, scheme: scheme}, d)
}

// wrapped instruments the Driver methods.
type wrapped struct {
	d      driver.Driver
	i      *Instrumentation
	scheme string
}

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

// The optional capabilities that call the store are instrumented; the
// others (driver.Verifier: checking a link is local and quick,
// driver.BytesKeeper and driver.ExclusivePutter: questions about the
// driver's writes) go to the driver directly. driver.Wrap calls these only
// when the driver has the capability.

func (w *wrapped) UpdateAttributes(ctx context.Context, ns, key string, a *driver.Attributes) error {
	ctx, span, start := w.start(ctx, CallUpdate, ns, key)
	err := w.d.(driver.Updater).UpdateAttributes(ctx, ns, key, a)
	w.end(ctx, span, start, CallUpdate, a, err)
	return err
}

func (w *wrapped) List(ctx context.Context, fn func(ns, key string, a *driver.Attributes) error) error {
	ctx, span, start := w.start(ctx, CallList, "", "")
	n := 0
	err := w.d.(driver.Lister).List(ctx, func(ns, key string, a *driver.Attributes) error {
		n++
		return fn(ns, key, a)
	})
	span.SetAttributes(attribute.Int("claimstash.backend.listed", n))
	w.end(ctx, span, start, CallList, nil, err)
	return err
}

func (w *wrapped) SignURL(ctx context.Context, r driver.LinkRequest) (string, error) {
	ctx, span, start := w.start(ctx, CallSign, r.Namespace, r.Key)
	u, err := w.d.(driver.Signer).SignURL(ctx, r)
	w.end(ctx, span, start, CallSign, nil, err)
	return u, err
}

func (w *wrapped) DeleteIf(ctx context.Context, ns, key string, cond func(have *driver.Attributes) bool) (bool, error) {
	ctx, span, start := w.start(ctx, CallDeleteIf, ns, key)
	deleted, err := w.d.(driver.ConditionalDeleter).DeleteIf(ctx, ns, key, cond)
	span.SetAttributes(attribute.Bool("claimstash.backend.deleted", deleted))
	w.end(ctx, span, start, CallDeleteIf, nil, err)
	return deleted, err
}

func (w *wrapped) ModifyAttributes(ctx context.Context, ns, key string, fn func(have *driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	ctx, span, start := w.start(ctx, CallModify, ns, key)
	a, err := w.d.(driver.Modifier).ModifyAttributes(ctx, ns, key, fn)
	w.end(ctx, span, start, CallModify, a, err)
	return a, err
}
