package otelstash

import (
	"go.opentelemetry.io/otel/propagation"

	"github.com/claimstash/claimstash/claimcheck"
)

// Carrier adapts claimcheck.Headers (any transport's headers: Watermill
// metadata, Kafka record headers, NATS headers) to a propagation carrier.
// claimcheck.Headers cannot list its keys, so Keys returns nil; the W3C
// Trace Context and Baggage propagators never call it.
type Carrier struct{ claimcheck.Headers }

var _ propagation.TextMapCarrier = Carrier{}

// Get returns the value of key, "" if it is not set.
func (c Carrier) Get(key string) string {
	v, _ := c.Headers.Get(key)
	return v
}

// Keys returns nil (see Carrier).
func (c Carrier) Keys() []string { return nil }
