package otelstash

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// StartOp implements stash.OpHook: a span per engine operation ("stash
// create", "stash retrieve", ...) with the stash's scheme, namespace, size,
// stored size, encoding and outcome, its latency in MetricStashDuration,
// and share links issued and refused in MetricShareLinks.
func (i *Instrumentation) StartOp(ctx context.Context, op, target string) (_ context.Context, _ func(*stash.Stash, error)) {
	if i == nil {
		return ctx, noDone
	}
	start := time.Now()
	attrs := []attribute.KeyValue{KeyStashOp.String(op)}
	switch {
	case op == stash.OpCreate:
		attrs = append(attrs, KeyName.String(target))
	case target != "":
		// A link without its query (its signature), as errors show it.
		attrs = append(attrs, KeyAddress.String(shownAddress(target)))
	}
	ctx, span := startSpan(i.tracer, ctx, "stash "+op, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, func(s *stash.Stash, err error) {
		defer contained("stash operation measurement")
		scheme := schemeOf(target)
		if s != nil {
			scheme = s.Address.Scheme
		}
		outcome, reason := OutcomeOK, Reason(err)
		if err != nil {
			outcome = OutcomeFailed
		}
		i.stashDuration.Record(ctx, since(start), i.opts(setKey{kind: kindStash, op: op, scheme: scheme, outcome: outcome, reason: reason}).rec...)
		switch {
		case op == stash.OpShare && err == nil:
			i.links.Add(ctx, 1, i.opts(setKey{kind: kindLink, scheme: scheme, outcome: OutcomeIssued}).add...)
		case errors.Is(err, stash.ErrForbidden) && isLink(target):
			i.links.Add(ctx, 1, i.opts(setKey{kind: kindLink, scheme: scheme, outcome: OutcomeRefused}).add...)
		}
		if span.IsRecording() {
			attrs := []attribute.KeyValue{KeyOutcome.String(outcome)}
			if scheme != "" {
				attrs = append(attrs, KeyScheme.String(scheme))
			}
			if s != nil {
				if op == stash.OpCreate || isLink(target) {
					// The target was a name or a link, not the address.
					attrs = append(attrs, KeyAddress.String(shownAddress(s.Address.String())))
				}
				attrs = append(attrs, KeyNamespace.String(s.Address.Namespace),
					KeySize.Int64(s.Size), KeyStoredSize.Int64(s.StoredSize), KeyEncoding.String(encoding(s.Encoding)))
			} else if ns := namespaceOf(target); ns != "" {
				attrs = append(attrs, KeyNamespace.String(ns))
			}
			span.SetAttributes(attrs...)
			if err != nil {
				span.SetAttributes(semconv.ErrorTypeKey.String(reason))
				recordError(span, err)
			}
		}
		span.End()
	}
}

func isLink(target string) bool {
	return strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://")
}

// namespaceOf is the namespace of an address, "" for a name or a link.
func namespaceOf(target string) string {
	if isLink(target) {
		return ""
	}
	_, rest, ok := strings.Cut(target, "://")
	if !ok {
		return ""
	}
	ns, _, _ := strings.Cut(rest, "/")
	return ns
}

func encoding(e driver.Encoding) string {
	if e == driver.EncodingIdentity {
		return "identity"
	}
	return string(e)
}
