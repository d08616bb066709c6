package otelstash_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// panickingProcessor is a span processor with a bug, as a broken exporter
// is: the SDK calls it synchronously as spans start and end.
type panickingProcessor struct{ onStart, onEnd bool }

func (p panickingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {
	if p.onStart {
		panic("span processor bug at start")
	}
}

func (p panickingProcessor) OnEnd(sdktrace.ReadOnlySpan) {
	if p.onEnd {
		panic("span processor bug at end")
	}
}
func (panickingProcessor) Shutdown(context.Context) error   { return nil }
func (panickingProcessor) ForceFlush(context.Context) error { return nil }

// panickingTracer's Start panics.
type panickingTracerProvider struct{ tracenoop.TracerProvider }

func (panickingTracerProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return panickingTracer{}
}

type panickingTracer struct{ tracenoop.Tracer }

func (panickingTracer) Start(context.Context, string, ...trace.SpanStartOption) (context.Context, trace.Span) {
	panic("tracer bug")
}

// panickingMeterProvider's counters and histograms panic when used.
type panickingMeterProvider struct{ metricnoop.MeterProvider }

func (panickingMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return panickingMeter{}
}

type panickingMeter struct{ metricnoop.Meter }

func (panickingMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return panickingCounter{}, nil
}

func (panickingMeter) Float64Histogram(string, ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return panickingHistogram{}, nil
}

type panickingCounter struct{ metricnoop.Int64Counter }

func (panickingCounter) Add(context.Context, int64, ...metric.AddOption) { panic("counter bug") }

type panickingHistogram struct{ metricnoop.Float64Histogram }

func (panickingHistogram) Record(context.Context, float64, ...metric.RecordOption) {
	panic("histogram bug")
}

// handled captures what reaches OpenTelemetry's error handler while the
// test runs.
func handled(t *testing.T) func() []error {
	t.Helper()
	var mu sync.Mutex
	var errs []error
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), errs...)
	}
}

// Telemetry with a bug (a span processor, a tracer or a meter that panics)
// does not break a send or a receive: the payload is offloaded, rehydrated
// intact and deleted, and the panic is reported to OpenTelemetry's error
// handler instead of unwinding through the caller. Not in parallel: it
// sets the global error handler.
func TestPanickingTelemetryDoesNotBreakMessages(t *testing.T) {
	for name, opts := range map[string][]otelstash.Option{
		"span processor at start": {otelstash.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(panickingProcessor{onStart: true})))},
		"span processor at end":   {otelstash.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(panickingProcessor{onEnd: true})))},
		"tracer":                  {otelstash.WithTracerProvider(panickingTracerProvider{})},
		"meter":                   {otelstash.WithTracerProvider(tracenoop.NewTracerProvider()), otelstash.WithMeterProvider(panickingMeterProvider{})},
	} {
		t.Run(name, func(t *testing.T) {
			reported := handled(t)
			inst, err := otelstash.New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			sendAndReceive(t, inst)
			errs := reported()
			if len(errs) == 0 {
				t.Fatal("the telemetry's panics were not reported to the error handler")
			}
			if msg := errs[0].Error(); !strings.HasPrefix(msg, "otelstash: ") || !strings.Contains(msg, "bug") {
				t.Errorf("reported %q; want an otelstash error naming the panic", msg)
			}
		})
	}
}

// A nil *Instrumentation, given as the observer and the engine's hook, is
// no instrumentation, not a nil dereference in every send.
func TestNilInstrumentation(t *testing.T) {
	var inst *otelstash.Instrumentation
	sendAndReceive(t, inst)
	if h := inst.ShareHandler(nil); h != nil {
		t.Errorf("ShareHandler of a nil Instrumentation wraps: %T", h)
	}
}

func sendAndReceive(t *testing.T, inst *otelstash.Instrumentation) {
	t.Helper()
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1), inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	payload := random(8 << 10)
	h := claimcheck.MapHeaders{}
	body, addr, err := c.Offload(ctx, "orders", payload, h)
	if err != nil || addr == "" {
		t.Fatalf("Offload: %q, %v", addr, err)
	}
	got, _, err := c.Rehydrate(ctx, "orders", body, h)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Rehydrate: %d bytes, %v", len(got), err)
	}
	if _, err := e.Stat(ctx, addr); err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if err := e.Delete(ctx, addr); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := e.Retrieve(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Retrieve after Delete: %v; want ErrNotFound", err)
	}
}
