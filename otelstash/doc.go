// Package otelstash is the OpenTelemetry instrumentation of claimstash:
// traces and metrics for the claim-check of every message and for every
// stash operation, on every backend and every transport.
//
// It uses the OpenTelemetry API only; the application chooses the SDK and
// exporters (package otelstash/otelprom serves the metrics in Prometheus
// format for operators). New takes a TracerProvider and a MeterProvider,
// the global ones by default.
//
//	inst, err := otelstash.New()                                  // global providers
//	engine, err := stash.New(stash.WithBackend(store), inst.EngineOption())
//	checker, err := claimcheck.New(engine, inst.CheckerOption())
//
//	// or, with package claimstash's one-call setup:
//	checker, err := claimstash.Open(ctx, backendURL,
//		claimstash.WithEngineOptions(inst.EngineOption()), claimstash.WithCheckerOptions(inst.CheckerOption()))
//
// One Instrumentation is three hooks:
//
//   - a claimcheck.Observer (and claimcheck.Starter): an "offload <topic>"
//     or "rehydrate <topic>" span per claim-checked message, and the
//     MetricMessages count of every message, passed through or not, so the
//     offload ratio can be computed; bytes offloaded, stored and rehydrated,
//     the compression ratio, latency, failures by reason (error.type: see
//     Reason);
//   - a stash.OpHook: a "stash create" (retrieve, open, stat, delete,
//     sweep, share) span per engine operation with the stash's scheme,
//     namespace, size, stored size, encoding and outcome, its latency, and
//     share links issued and refused;
//   - a stash.DriverHook: every backend's driver wrapped, with its optional
//     capabilities kept, so that each backend call ("s3 put", "nats get")
//     is a client span with its latency per backend, and a new backend is
//     covered without code of its own. A stat that finds nothing has
//     outcome OutcomeNotFound and a put that finds the content stored
//     already OutcomeExists: answers the engine acts on, not failures.
//
// # Traces across the broker
//
// An offload span is a child of the span in the message's context (the
// transport's publish span, when its own instrumentation made one: Watermill
// tracing middleware and decorators put theirs in the message context), or
// else of the trace context in the message headers (otelsarama injects its
// publish span there: sarama messages carry no context), or stands alone.
// After the stash is written, the offload span's context is written into
// the message headers in the standard W3C traceparent and tracestate
// headers, unless the message already carries them (the transport's
// instrumentation then writes its own); no claimstash-specific header is
// used. A rehydrate span follows the same rule on the consumer side, so
// without any transport instrumentation (core NATS) the consumer's span is
// a child of the producer's offload span across the broker; under a
// consumer span of the transport's that did not continue the producer's
// trace, it links the producer's context instead. The stash
// records the trace id of the operation that wrote it in its metadata
// (MetadataTraceID), so an operator holding an address can find its
// producer.
//
// # What telemetry never does
//
// No span attribute, status or exception event carries a share link's
// query (its signature) or an inline address's data (the payload itself):
// they show as https://host/path?… and inline://ns/name?…. Telemetry that
// panics (a span processor, an exporter, a meter with a bug) is reported
// to OpenTelemetry's error handler (otel.Handle) and never fails a send, a
// receive or a backend call. A nil *Instrumentation is no instrumentation:
// its hooks and options do nothing.
//
// # Cost
//
// A message that passes through costs one counter increment on a cached
// attribute set and no allocation; see BENCHMARKS.md.
package otelstash
