// Package otelprom serves claimstash's OpenTelemetry metrics in Prometheus
// format, for the command line and for operators: it builds an SDK
// MeterProvider whose reader is OpenTelemetry's Prometheus exporter over a
// registry of its own, and the http.Handler that serves that registry at
// /metrics.
//
//	exp, err := otelprom.New()
//	inst, err := exp.Instrumentation()   // otelstash.New with exp's MeterProvider
//	engine, err := stash.New(..., inst.EngineOption())
//	mux.Handle("/metrics", exp)
//
// Unlike package otelstash, which uses the OpenTelemetry API only, this
// package imports the SDK and the exporter: import it from main packages.
package otelprom

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprometheus "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/claimstash/claimstash/otelstash"
)

// Exporter is a MeterProvider and the handler that serves what it collects.
type Exporter struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// New builds an Exporter over a new Prometheus registry.
func New() (*Exporter, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprometheus.New(otelprometheus.WithRegisterer(reg))
	if err != nil {
		return nil, errors.Join(errors.New("otelprom: building the Prometheus exporter"), err)
	}
	return &Exporter{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		handler:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// MeterProvider is the provider to give otelstash.WithMeterProvider (or
// otel.SetMeterProvider).
func (e *Exporter) MeterProvider() metric.MeterProvider { return e.provider }

// ServeHTTP serves the metrics in the Prometheus text format: mount the
// Exporter at /metrics.
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.handler.ServeHTTP(w, r) }

// Instrumentation is otelstash.New with the exporter's MeterProvider (and
// opts, which may set the tracer provider or the propagator).
func (e *Exporter) Instrumentation(opts ...otelstash.Option) (*otelstash.Instrumentation, error) {
	return otelstash.New(append([]otelstash.Option{otelstash.WithMeterProvider(e.provider)}, opts...)...)
}

// Shutdown stops the provider.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.provider.Shutdown(ctx) }
