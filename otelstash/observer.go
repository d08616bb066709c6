package otelstash

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/claimcheck"
)

// spanKey finds, in Observe, the span that Start opened for the same
// operation (another Starter may have put a span of its own on top).
type spanKey struct{}

// Start implements claimcheck.Starter: it opens the offload, rehydrate or
// delete span. Its parent is the span in ctx (a transport's publish or
// process span, when the transport's own instrumentation made one and put
// it in the context, as Watermill's tracing middleware does), else the
// trace context in the message headers (where otelsarama, for one, puts its
// spans: sarama messages carry no context), else none: the span stands
// alone. A rehydrate span whose parent is a span in ctx is linked to the
// trace context the headers carry, when they carry another one (a
// consumer's process span that did not continue the producer's trace).
func (i *Instrumentation) Start(ctx context.Context, ev claimcheck.Event) (out context.Context) {
	if i == nil {
		return ctx
	}
	out = ctx
	defer contained("claim-check span")
	parent := ctx
	var opts []trace.SpanStartOption
	local := trace.SpanContextFromContext(ctx)
	if ev.Headers != nil && (!local.IsValid() || ev.Op == claimcheck.OpRehydrate) {
		remote := i.prop.Extract(ctx, Carrier{ev.Headers})
		switch rsc := trace.SpanContextFromContext(remote); {
		case !local.IsValid():
			parent = remote
		case rsc.IsValid() && rsc.SpanID() != local.SpanID():
			// The consumer's own span is the parent; the producer's
			// context that the message carried is linked.
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: rsc}))
		}
	}
	attrs := []attribute.KeyValue{semconv.MessagingOperationName(ev.Op)}
	if ev.Topic != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(ev.Topic))
	}
	if ev.Op == claimcheck.OpOffload {
		attrs = append(attrs, semconv.MessagingMessageBodySize(int(ev.Size)))
	}
	if ev.Address != "" {
		attrs = append(attrs, KeyAddress.String(shownAddress(ev.Address)))
	}
	name := ev.Op
	if ev.Topic != "" {
		name += " " + ev.Topic
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	ctx, span := startSpan(i.tracer, parent, name, opts...)
	return context.WithValue(ctx, spanKey{}, span)
}

// Observe implements claimcheck.Observer: it counts the message, records
// the bytes and the latency, and ends the span Start opened. After a
// successful offload it writes the trace context into the message headers
// (the propagator's, W3C traceparent and tracestate by default) unless the
// message already carries one, so the consumer's spans join the
// producer's trace.
func (i *Instrumentation) Observe(ctx context.Context, ev claimcheck.Event) {
	if i == nil {
		return
	}
	defer contained("claim-check measurement")
	outcome, reason := OutcomeFailed, Reason(ev.Err)
	if ev.Err == nil {
		switch ev.Op {
		case claimcheck.OpPass:
			i.messages.Add(ctx, 1, i.passOpts(ev.Topic).passed.add...)
			return
		case claimcheck.OpPlain:
			i.messages.Add(ctx, 1, i.passOpts(ev.Topic).plain.add...)
			return
		case claimcheck.OpOffload:
			outcome = OutcomeOffloaded
		case claimcheck.OpRehydrate:
			outcome = OutcomeRehydrated
		case claimcheck.OpDelete:
			outcome = OutcomeDeleted
		default:
			outcome = OutcomeOK
		}
	}
	o := i.opts(setKey{kind: kindMessage, op: ev.Op, topic: ev.Topic, scheme: schemeOf(ev.Address), outcome: outcome, reason: reason})
	i.messages.Add(ctx, 1, o.add...)
	if ev.Duration > 0 || ev.Err == nil {
		i.msgDuration.Record(ctx, ev.Duration.Seconds(), o.rec...)
	}
	if ev.Err == nil {
		switch ev.Op {
		case claimcheck.OpOffload:
			i.offloadPayload.Add(ctx, ev.Size, o.add...)
			i.offloadStored.Add(ctx, ev.StoredSize, o.add...)
			if ev.Size > 0 {
				i.ratio.Record(ctx, float64(ev.StoredSize)/float64(ev.Size), o.rec...)
			}
		case claimcheck.OpRehydrate:
			i.rehydratePayload.Add(ctx, ev.Size, o.add...)
		}
	}
	span, _ := ctx.Value(spanKey{}).(trace.Span)
	if span == nil {
		return
	}
	if ev.Op == claimcheck.OpOffload && ev.Err == nil && ev.Headers != nil && !i.hasTraceContext(ev.Headers) {
		i.prop.Inject(trace.ContextWithSpan(ctx, span), Carrier{ev.Headers})
	}
	if span.IsRecording() {
		attrs := []attribute.KeyValue{KeyOutcome.String(outcome)}
		if ev.Address != "" {
			attrs = append(attrs, KeyAddress.String(shownAddress(ev.Address)))
		}
		if ev.Size > 0 {
			attrs = append(attrs, KeySize.Int64(ev.Size))
		}
		if ev.StoredSize > 0 {
			attrs = append(attrs, KeyStoredSize.Int64(ev.StoredSize))
		}
		span.SetAttributes(attrs...)
		if ev.Err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(reason))
			recordError(span, ev.Err)
		}
	}
	span.End()
}

func (i *Instrumentation) hasTraceContext(h claimcheck.Headers) bool {
	for _, f := range i.fields {
		if _, ok := h.Get(f); ok {
			return true
		}
	}
	return false
}
