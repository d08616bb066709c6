package otelstash

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/claimstash/claimstash/otelstash"

// Metric names. Attributes use OpenTelemetry's semantic conventions where
// they have a name (messaging.destination.name, messaging.operation.name,
// error.type) and claimstash.* otherwise.
const (
	// MetricMessages counts messages by operation (offload, rehydrate,
	// delete) and outcome (OutcomeOffloaded, OutcomePassed, ...), with the
	// failure reason in error.type. The offload ratio is
	// messages{outcome=offloaded} / messages{messaging.operation.name=offload}.
	MetricMessages = "claimstash.messages"
	// MetricOffloadPayload counts the payload bytes offloaded (as given).
	MetricOffloadPayload = "claimstash.offload.payload"
	// MetricOffloadStored counts the bytes the backends hold for them
	// (after compression).
	MetricOffloadStored = "claimstash.offload.stored"
	// MetricRehydratePayload counts the payload bytes rehydrated.
	MetricRehydratePayload = "claimstash.rehydrate.payload"
	// MetricCompressionRatio is a histogram of stored size / payload size per
	// offload (1 for a payload stored as given).
	MetricCompressionRatio = "claimstash.compression.ratio"
	// MetricMessageDuration is the latency of offloads, rehydrations and
	// deletes after ack, by operation, scheme and outcome.
	MetricMessageDuration = "claimstash.message.duration"
	// MetricStashDuration is the latency of engine operations (create,
	// retrieve, open, stat, delete, sweep, share) by scheme and outcome.
	MetricStashDuration = "claimstash.stash.duration"
	// MetricBackendDuration is the latency of driver calls (put, get, stat,
	// delete, update, list, sign) by scheme and outcome.
	MetricBackendDuration = "claimstash.backend.duration"
	// MetricShareLinks counts share links issued (by Engine.Share) and
	// refused (a link whose signature or host did not verify, on Retrieve,
	// Open or at the share handler).
	MetricShareLinks = "claimstash.share.links"
)

// Attribute keys of claimstash's own. KeyAddress shows a share link as
// errors do (stash.DisplayAddress): without its query, its signature; and
// an inline address without its data, the payload (inline://ns/name?…).
// Error messages recorded on spans leave inline data out too.
const (
	KeyOutcome       = attribute.Key("claimstash.outcome")
	KeyScheme        = attribute.Key("claimstash.stash.scheme")
	KeyNamespace     = attribute.Key("claimstash.stash.namespace")
	KeyAddress       = attribute.Key("claimstash.stash.address")
	KeyName          = attribute.Key("claimstash.stash.name")
	KeySize          = attribute.Key("claimstash.stash.size")
	KeyStoredSize    = attribute.Key("claimstash.stash.stored_size")
	KeyEncoding      = attribute.Key("claimstash.stash.encoding")
	KeyStashOp       = attribute.Key("claimstash.stash.operation")
	KeyBackendCall   = attribute.Key("claimstash.backend.call")
	KeyStashKey      = attribute.Key("claimstash.stash.key")
	KeyMetadataTrace = attribute.Key("claimstash.stash.trace_id")
)

// Outcomes (KeyOutcome values).
const (
	OutcomeOffloaded  = "offloaded"  // OpOffload, stored
	OutcomePassed     = "passed"     // OpPass: sent as it was
	OutcomeRehydrated = "rehydrated" // OpRehydrate, restored
	OutcomePlain      = "plain"      // OpPlain: not claim-checked, delivered as it was
	OutcomeDeleted    = "deleted"    // OpDelete after ack
	OutcomeFailed     = "failed"     // any, with error.type
	OutcomeOK         = "ok"         // engine and driver calls
	OutcomeNotFound   = "not_found"  // a driver call that found nothing (not an error of the backend)
	OutcomeExists     = "exists"     // a driver put that found the content stored already (not an error either)
	OutcomeIssued     = "issued"     // share links
	OutcomeRefused    = "refused"    // share links
)

// Failure reasons (error.type values).
const (
	ReasonNotFound   = "not_found"
	ReasonExpired    = "expired"
	ReasonIntegrity  = "integrity"
	ReasonNotAllowed = "not_allowed"
	ReasonInvalid    = "invalid"
	ReasonTooLarge   = "too_large"
	ReasonTimeout    = "timeout"
	ReasonCanceled   = "canceled"
	ReasonBackend    = "backend"
)

// MetadataTraceID is the stash metadata key under which a stash records the
// trace id of the operation that wrote it (lowercase hex), so an operator
// holding an address can find its producer's trace.
const MetadataTraceID = "otel.trace_id"

// Reason classifies an error for the error.type attribute: one of the
// Reason* constants, "" for nil.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, stash.ErrExpired):
		return ReasonExpired
	case errors.Is(err, stash.ErrNotFound):
		return ReasonNotFound
	case errors.Is(err, stash.ErrIntegrity):
		return ReasonIntegrity
	case errors.Is(err, claimcheck.ErrNotAllowed), errors.Is(err, stash.ErrForbidden):
		return ReasonNotAllowed
	case errors.Is(err, stash.ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, stash.ErrInvalidAddress), errors.Is(err, stash.ErrUnsupported),
		errors.Is(err, claimcheck.ErrMalformed), errors.Is(err, claimcheck.ErrUnsupportedVersion),
		errors.Is(err, claimcheck.ErrBadOverride):
		return ReasonInvalid
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	}
	return ReasonBackend
}

// An Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp   trace.TracerProvider
	mp   metric.MeterProvider
	prop propagation.TextMapPropagator
}

// WithTracerProvider sets the tracer provider (otel.GetTracerProvider()
// by default).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider sets the meter provider (otel.GetMeterProvider() by
// default).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithPropagator sets how trace context is read from and written to
// message headers: W3C Trace Context (traceparent, tracestate) by default,
// the headers every transport's own instrumentation uses.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.prop = p })
}

// Instrumentation is the OpenTelemetry instrumentation of a checker and of
// an engine: a claimcheck.Observer (and claimcheck.Starter) for the
// messages, and a stash.DriverHook and stash.OpHook for the engine and
// every backend. One Instrumentation may serve several checkers and
// engines; it is safe for concurrent use.
type Instrumentation struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	fields []string

	messages         metric.Int64Counter
	offloadPayload   metric.Int64Counter
	offloadStored    metric.Int64Counter
	rehydratePayload metric.Int64Counter
	ratio            metric.Float64Histogram
	msgDuration      metric.Float64Histogram
	stashDuration    metric.Float64Histogram
	backendDuration  metric.Float64Histogram
	links            metric.Int64Counter

	sets     sync.Map // setKey -> *attrOpts
	setCount atomic.Int64
	// The pass-through path, per topic: the last topic seen, then a map.
	lastTopic atomic.Pointer[topicOpts]
	topics    sync.Map // topic -> *topicOpts
}

// topicOpts are the precomputed options of the pass-through counts of one
// topic.
type topicOpts struct {
	topic         string
	passed, plain *attrOpts
}

// passOpts returns the options of topic's pass-through counts, in a few
// nanoseconds when the topic is the last one seen.
func (i *Instrumentation) passOpts(topic string) *topicOpts {
	if t := i.lastTopic.Load(); t != nil && t.topic == topic {
		return t
	}
	v, ok := i.topics.Load(topic)
	if !ok {
		t := &topicOpts{
			topic:  topic,
			passed: i.opts(setKey{kind: kindMessage, op: claimcheck.OpOffload, topic: topic, outcome: OutcomePassed}),
			plain:  i.opts(setKey{kind: kindMessage, op: claimcheck.OpRehydrate, topic: topic, outcome: OutcomePlain}),
		}
		if i.setCount.Load() >= maxSets {
			return t
		}
		v, _ = i.topics.LoadOrStore(topic, t)
	}
	t := v.(*topicOpts)
	i.lastTopic.Store(t)
	return t
}

var (
	_ claimcheck.Starter = (*Instrumentation)(nil)
	_ stash.DriverHook   = (*Instrumentation)(nil)
	_ stash.OpHook       = (*Instrumentation)(nil)
)

// durationBuckets are seconds, from an in-memory stash (100 µs) to a slow
// multipart upload (a minute).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

var ratioBuckets = []float64{0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1}

// New returns an Instrumentation over the given (or the global) providers.
func New(opts ...Option) (*Instrumentation, error) {
	c := config{}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = propagation.TraceContext{}
	}
	i := &Instrumentation{
		tracer: c.tp.Tracer(ScopeName),
		prop:   c.prop,
		fields: c.prop.Fields(),
	}
	m := c.mp.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		ins, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ins
	}
	histogram := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		ins, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return ins
	}
	i.messages = counter(MetricMessages, "{message}", "Messages seen by the claim-check, by operation and outcome.")
	i.offloadPayload = counter(MetricOffloadPayload, "By", "Payload bytes offloaded to a stash.")
	i.offloadStored = counter(MetricOffloadStored, "By", "Bytes stored for offloaded payloads, after compression.")
	i.rehydratePayload = counter(MetricRehydratePayload, "By", "Payload bytes rehydrated from a stash.")
	i.ratio = histogram(MetricCompressionRatio, "1", "Stored size over payload size, per offload.", ratioBuckets)
	i.msgDuration = histogram(MetricMessageDuration, "s", "Duration of offloads, rehydrations and deletes after ack.", durationBuckets)
	i.stashDuration = histogram(MetricStashDuration, "s", "Duration of stash engine operations.", durationBuckets)
	i.backendDuration = histogram(MetricBackendDuration, "s", "Duration of backend (driver) calls.", durationBuckets)
	i.links = counter(MetricShareLinks, "{link}", "Share links issued and refused.")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return i, nil
}

// EngineOption is stash.WithHooks(i): add it to stash.New to trace and
// measure every engine operation and every backend call.
func (i *Instrumentation) EngineOption() stash.Option { return stash.WithHooks(i) }

// CheckerOption is claimcheck.WithObserver(i). To keep another observer
// too, pass claimcheck.WithObserver(claimcheck.Observers(i, other)).
func (i *Instrumentation) CheckerOption() claimcheck.Option { return claimcheck.WithObserver(i) }

// setKey identifies one attribute set of a measurement.
type setKey struct {
	op, topic, scheme, outcome, reason string
	kind                               uint8
}

const (
	kindMessage uint8 = iota
	kindStash
	kindBackend
	kindLink
)

// attrOpts holds the precomputed options of one attribute set, so a
// measurement on a known set allocates nothing.
type attrOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// maxSets bounds the attribute-set cache; past it, sets are built per call.
const maxSets = 4096

func (i *Instrumentation) opts(k setKey) *attrOpts {
	if v, ok := i.sets.Load(k); ok {
		return v.(*attrOpts)
	}
	var kv []attribute.KeyValue
	switch k.kind {
	case kindMessage:
		kv = append(kv, semconv.MessagingOperationName(k.op), KeyOutcome.String(k.outcome))
		if k.topic != "" {
			kv = append(kv, semconv.MessagingDestinationName(k.topic))
		}
	case kindStash:
		kv = append(kv, KeyStashOp.String(k.op), KeyOutcome.String(k.outcome))
	case kindBackend:
		kv = append(kv, KeyBackendCall.String(k.op), KeyOutcome.String(k.outcome))
	case kindLink:
		kv = append(kv, KeyOutcome.String(k.outcome))
	}
	if k.scheme != "" {
		kv = append(kv, KeyScheme.String(k.scheme))
	}
	if k.reason != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.reason))
	}
	set := attribute.NewSet(kv...)
	o := &attrOpts{add: []metric.AddOption{metric.WithAttributeSet(set)}, rec: []metric.RecordOption{metric.WithAttributeSet(set)}}
	if i.setCount.Load() < maxSets {
		if v, loaded := i.sets.LoadOrStore(k, o); loaded {
			return v.(*attrOpts)
		}
		i.setCount.Add(1)
	}
	return o
}

// schemeOf is the scheme of an address or link ("" if it has none).
func schemeOf(address string) string {
	s, _, ok := strings.Cut(address, "://")
	if !ok || len(s) > 16 {
		return ""
	}
	return s
}
