package otelstash_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Instrument an engine and a checker, send four messages of which one is
// over the threshold, and read the offload ratio from the metrics.
func Example() {
	reader := sdkmetric.NewManualReader() // in production: a Prometheus or OTLP exporter
	inst, err := otelstash.New(otelstash.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		panic(err)
	}
	engine, err := stash.New(stash.WithBackend(memstash.New()), inst.EngineOption())
	if err != nil {
		panic(err)
	}
	checker, err := claimcheck.New(engine, claimcheck.WithThreshold(64<<10), inst.CheckerOption())
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, n := range []int{100, 2 << 10, 30 << 10, 1 << 20} {
		if _, _, err := checker.Offload(ctx, "orders", make([]byte, n), claimcheck.MapHeaders{}); err != nil {
			panic(err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	byOutcome := map[string]int64{}
	var payload, stored int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, p := range sum.DataPoints {
				switch m.Name {
				case otelstash.MetricMessages:
					o, _ := p.Attributes.Value(otelstash.KeyOutcome)
					byOutcome[o.AsString()] += p.Value
				case otelstash.MetricOffloadPayload:
					payload += p.Value
				case otelstash.MetricOffloadStored:
					stored += p.Value
				}
			}
		}
	}
	total := byOutcome[otelstash.OutcomeOffloaded] + byOutcome[otelstash.OutcomePassed]
	fmt.Printf("offloaded %d of %d messages (ratio %.2f)\n", byOutcome[otelstash.OutcomeOffloaded], total, float64(byOutcome[otelstash.OutcomeOffloaded])/float64(total))
	fmt.Printf("offloaded %d bytes, stored %d\n", payload, stored)
	// Output:
	// offloaded 1 of 4 messages (ratio 0.25)
	// offloaded 1048576 bytes, stored 211
}
