package otelstash_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/otelstash"
)

// telemetry is an Instrumentation over the SDK with an in-memory span
// recorder and a manual metric reader.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	inst   *otelstash.Instrumentation
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tm := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tm.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tm.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tm.reader))
	inst, err := otelstash.New(otelstash.WithTracerProvider(tm.tp), otelstash.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	tm.inst = inst
	t.Cleanup(func() {
		_ = tm.tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tm
}

// tracer is a tracer of the same provider, standing in for a transport's
// own instrumentation.
func (tm *telemetry) tracer() trace.Tracer { return tm.tp.Tracer("transport") }

func (tm *telemetry) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) *metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for i := range sm.Metrics {
			if sm.Metrics[i].Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum adds up the points of counter name whose attributes include want.
func (tm *telemetry) sum(t testing.TB, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m := find(tm.collect(t), name)
	if m == nil {
		return 0
	}
	data, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, not an int64 sum", name, m.Data)
	}
	var n int64
	for _, p := range data.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// hist returns the count and sum of histogram name's points whose
// attributes include want.
func (tm *telemetry) hist(t testing.TB, name string, want ...attribute.KeyValue) (uint64, float64) {
	t.Helper()
	m := find(tm.collect(t), name)
	if m == nil {
		return 0, 0
	}
	data, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T, not a float64 histogram", name, m.Data)
	}
	var n uint64
	var s float64
	for _, p := range data.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
			s += p.Sum
		}
	}
	return n, s
}

// ended returns the ended spans named name.
func (tm *telemetry) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tm.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only ended span named name.
func (tm *telemetry) one(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	s := tm.ended(name)
	if len(s) != 1 {
		t.Fatalf("%d spans named %q, want 1; spans: %s", len(s), name, tm.names())
	}
	return s[0]
}

func (tm *telemetry) names() string {
	var n []string
	for _, s := range tm.spans.Ended() {
		n = append(n, s.Name())
	}
	slices.Sort(n)
	return strings.Join(n, ", ")
}

// attr returns the span's attribute key.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// childOf fails unless child's parent is parent.
func childOf(t testing.TB, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q: parent %s in trace %s, want %q (%s in %s)", child.Name(), child.Parent().SpanID(), child.SpanContext().TraceID(),
			parent.Name(), parent.SpanContext().SpanID(), parent.SpanContext().TraceID())
	}
}
