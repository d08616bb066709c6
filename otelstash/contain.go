package otelstash

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/stash"
)

// contained, deferred, stops a panic of the telemetry (a tracer, a meter,
// a span processor or exporter with a bug) from unwinding through the
// send, receive or backend call it observes, and reports it to
// OpenTelemetry's error handler (otel.Handle) instead: telemetry is never
// a reason for a message to fail.
func contained(what string) {
	if r := recover(); r != nil {
		reportPanic(what, r)
	}
}

func reportPanic(what string, r any) {
	otel.Handle(fmt.Errorf("otelstash: %s: the telemetry panicked: %v", what, r))
}

// noSpan is the span of a call whose tracer panicked: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

func noDone(*stash.Stash, error) {}

// startSpan is tracer.Start, with a tracer that panics giving ctx and a
// span that records nothing.
func startSpan(tracer trace.Tracer, ctx context.Context, name string, opts ...trace.SpanStartOption) (out context.Context, span trace.Span) {
	defer func() {
		if r := recover(); r != nil {
			reportPanic("starting span "+name, r)
			out, span = ctx, noSpan
		}
	}()
	return tracer.Start(ctx, name, opts...)
}

// since is time.Since, in seconds.
func since(t time.Time) float64 { return time.Since(t).Seconds() }
