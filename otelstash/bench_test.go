package otelstash_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// benchChecker is a checker over memstash (default threshold), with inst's
// hooks when inst is not nil.
func benchChecker(b *testing.B, inst *otelstash.Instrumentation, copts ...claimcheck.Option) *claimcheck.Checker {
	b.Helper()
	opts := []stash.Option{stash.WithBackend(memstash.New())}
	if inst != nil {
		opts = append(opts, inst.EngineOption())
		copts = append(copts, inst.CheckerOption())
	}
	e, err := stash.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	c, err := claimcheck.New(e, copts...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func noopInstrumentation(b *testing.B) *otelstash.Instrumentation {
	inst, err := otelstash.New(otelstash.WithTracerProvider(tracenoop.NewTracerProvider()), otelstash.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	return inst
}

// countingProcessor counts ended spans and keeps none, as a batching
// exporter would after export.
type countingProcessor struct{ n atomic.Int64 }

func (p *countingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *countingProcessor) OnEnd(sdktrace.ReadOnlySpan)                     { p.n.Add(1) }
func (p *countingProcessor) Shutdown(context.Context) error                  { return nil }
func (p *countingProcessor) ForceFlush(context.Context) error                { return nil }

// sdkInstrumentation records with the SDK: every span sampled and ended
// into a counting processor, metrics aggregated for a manual reader that
// is collected at the end.
func sdkInstrumentation(b *testing.B) (*otelstash.Instrumentation, *countingProcessor) {
	spans := &countingProcessor{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	inst, err := otelstash.New(otelstash.WithTracerProvider(tp), otelstash.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	return inst, spans
}

// interleave runs base and other in alternating batches of batch calls,
// in the same run, and reports ns per call of each, the ratio of their
// totals, the median of the per-round ratios (robust to a GC or another
// process landing on one side), and the allocations other adds per call
// (measured apart, so that reading them does not disturb the timing).
func interleave(b *testing.B, batch int, base, other func()) {
	var tBase, tOther time.Duration
	run := func(f func()) time.Duration {
		start := time.Now()
		for range batch {
			f()
		}
		return time.Since(start)
	}
	run(base)
	run(other)
	b.ResetTimer()
	rounds := max(1, b.N/batch)
	ratios := make([]float64, 0, rounds)
	for r := range rounds {
		var db, do time.Duration
		if r%2 == 0 {
			db, do = run(base), run(other)
		} else {
			do, db = run(other), run(base)
		}
		tBase += db
		tOther += do
		ratios = append(ratios, float64(do)/float64(db))
	}
	b.StopTimer()
	slices.Sort(ratios)
	n := float64(rounds * batch)
	b.ReportMetric(float64(tBase.Nanoseconds())/n, "ns/msg-base")
	b.ReportMetric(float64(tOther.Nanoseconds())/n, "ns/msg-instrumented")
	b.ReportMetric(float64(tOther)/float64(tBase), "ratio")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
	b.ReportMetric(testing.AllocsPerRun(100, other)-testing.AllocsPerRun(100, base), "extra-allocs/msg")
}

// wmPipe is a claim-checked Watermill publish-to-handler path over a Go
// channel.
type wmPipe struct {
	pub  message.Publisher
	got  chan *message.Message
	stop func()
}

func newWMPipe(b *testing.B, c *claimcheck.Checker) *wmPipe {
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	pub, sub := ccwatermill.NewPublisher(gc, c), ccwatermill.NewSubscriber(gc, c)
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	p := &wmPipe{pub: pub, got: make(chan *message.Message)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			m.Ack()
			p.got <- m
		}
	}()
	p.stop = func() {
		cancel()
		_ = sub.Close()
		_ = gc.Close()
		<-done
	}
	return p
}

func (p *wmPipe) send(b *testing.B, size int) {
	m := message.NewMessage("id", make([]byte, size))
	m.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err := p.pub.Publish("bench", m); err != nil {
		b.Fatal(err)
	}
	<-p.got
}

// BenchmarkBelowThresholdNoop: a 1 KiB message published to a handler
// through the claim-check decorators over a Go channel, with otelstash on
// the no-op providers against the same path without instrumentation,
// interleaved (target: ratio within 1.01, no extra allocation).
func BenchmarkBelowThresholdNoop(b *testing.B) {
	plain, inst := newWMPipe(b, benchChecker(b, nil)), newWMPipe(b, benchChecker(b, noopInstrumentation(b)))
	defer plain.stop()
	defer inst.stop()
	interleave(b, 50, func() { plain.send(b, 1<<10) }, func() { inst.send(b, 1<<10) })
}

// BenchmarkOffloadPassNoop is the checker's own below-threshold call, the
// smallest unit the instrumentation adds to: the absolute cost of counting a
// message that passes through, with the no-op providers.
func BenchmarkOffloadPassNoop(b *testing.B) {
	plain, inst := benchChecker(b, nil), benchChecker(b, noopInstrumentation(b))
	body, ctx := make([]byte, 1<<10), context.Background()
	h := claimcheck.MapHeaders{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	interleave(b, 1000, func() { _, _, _ = plain.Offload(ctx, "bench", body, h) }, func() { _, _, _ = inst.Offload(ctx, "bench", body, h) })
}

// BenchmarkOffloadPassSDK: the same with the SDK recording (a manual
// metric reader, a span recorder): the cost per message that passes through.
func BenchmarkOffloadPassSDK(b *testing.B) {
	sdk, _ := sdkInstrumentation(b)
	plain, inst := benchChecker(b, nil), benchChecker(b, sdk)
	body, ctx := make([]byte, 1<<10), context.Background()
	h := claimcheck.MapHeaders{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	interleave(b, 1000, func() { _, _, _ = plain.Offload(ctx, "bench", body, h) }, func() { _, _, _ = inst.Offload(ctx, "bench", body, h) })
}

// BenchmarkOffloadSDK: one offload and one rehydration to memstash with
// the SDK recording every span and metric, against the same without
// instrumentation: the cost per offloaded message. At 1 KiB (offloaded by
// claimcheck.Always) the instrumentation's own cost shows; at 512 KiB it is
// set against hashing and copying the payload.
func BenchmarkOffloadSDK(b *testing.B) {
	for _, size := range []int{1 << 10, 512 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchOffloadSDK(b, size) })
	}
}

func benchOffloadSDK(b *testing.B, size int) {
	inst, spans := sdkInstrumentation(b)
	plain, instr := benchChecker(b, nil, claimcheck.WithMode(claimcheck.Always)), benchChecker(b, inst, claimcheck.WithMode(claimcheck.Always))
	body, ctx := random(size), context.Background()
	roundTrip := func(c *claimcheck.Checker) func() {
		return func() {
			h := claimcheck.MapHeaders{}
			ref, _, err := c.Offload(ctx, "bench", body, h)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.Rehydrate(ctx, "bench", ref, h); err != nil {
				b.Fatal(err)
			}
		}
	}
	before := spans.n.Load()
	roundTrip(instr)()
	perMsg := spans.n.Load() - before
	interleave(b, 20, roundTrip(plain), roundTrip(instr))
	b.ReportMetric(float64(perMsg), "spans/msg")
}
