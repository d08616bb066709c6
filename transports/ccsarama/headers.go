package ccsarama

import (
	"bytes"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

// Headers adapts the record headers of a sarama message to
// claimcheck.Headers. ProducerMessage.Headers ([]RecordHeader) and
// ConsumerMessage.Headers ([]*RecordHeader) have different types; one adapter
// serves both. Keys are compared byte for byte (Kafka header keys are
// case-sensitive).
//
// Set and Del never write into the slice the message had: they build a new
// one, so a header slice shared between several messages is left alone.
type Headers struct {
	p *[]sarama.RecordHeader
	c *[]*sarama.RecordHeader
}

var _ claimcheck.Headers = Headers{}

// ProducerHeaders returns the headers of m.
func ProducerHeaders(m *sarama.ProducerMessage) Headers { return Headers{p: &m.Headers} }

// ConsumerHeaders returns the headers of m.
func ConsumerHeaders(m *sarama.ConsumerMessage) Headers { return Headers{c: &m.Headers} }

func (h Headers) len() int {
	if h.p != nil {
		return len(*h.p)
	}
	return len(*h.c)
}

// at returns header i; nil entries of a consumer slice read as empty.
func (h Headers) at(i int) (k, v []byte) {
	if h.p != nil {
		r := (*h.p)[i]
		return r.Key, r.Value
	}
	if r := (*h.c)[i]; r != nil {
		return r.Key, r.Value
	}
	return nil, nil
}

// Get returns the value of the first header named key.
func (h Headers) Get(key string) (string, bool) {
	for i := range h.len() {
		if k, v := h.at(i); string(k) == key {
			return string(v), true
		}
	}
	return "", false
}

// Set replaces every header named key by one header key=value, in the
// place of the first, or appends it.
func (h Headers) Set(key, value string) {
	h.rebuild(key, &value)
}

// Del removes every header named key.
func (h Headers) Del(key string) {
	if _, ok := h.Get(key); ok {
		h.rebuild(key, nil)
	}
}

// WireSize counts the bytes of keys and values.
func (h Headers) WireSize() int {
	n := 0
	for i := range h.len() {
		k, v := h.at(i)
		n += len(k) + len(v)
	}
	return n
}

// rebuild copies the headers, dropping those named key, and puts key=value
// where the first one was (or at the end) when value is not nil.
func (h Headers) rebuild(key string, value *string) {
	kb := []byte(key)
	placed := value == nil
	if h.p != nil {
		out := make([]sarama.RecordHeader, 0, len(*h.p)+1)
		for _, r := range *h.p {
			if !bytes.Equal(r.Key, kb) {
				out = append(out, r)
			} else if !placed {
				out = append(out, sarama.RecordHeader{Key: kb, Value: []byte(*value)})
				placed = true
			}
		}
		if !placed {
			out = append(out, sarama.RecordHeader{Key: kb, Value: []byte(*value)})
		}
		*h.p = out
		return
	}
	out := make([]*sarama.RecordHeader, 0, len(*h.c)+1)
	for _, r := range *h.c {
		if r == nil || !bytes.Equal(r.Key, kb) {
			out = append(out, r)
		} else if !placed {
			out = append(out, &sarama.RecordHeader{Key: kb, Value: []byte(*value)})
			placed = true
		}
	}
	if !placed {
		out = append(out, &sarama.RecordHeader{Key: kb, Value: []byte(*value)})
	}
	*h.c = out
}

// IsClaimChecked reports whether m is still claim-checked: its value is a
// reference (a stash address, or an AWS pointer, claimcheck.IsAWSPointer),
// not the payload. After a ConsumerInterceptor, such a message is one whose
// stash could not be read; do not process it as the payload.
func IsClaimChecked(m *sarama.ConsumerMessage) bool {
	h := consumerHeaders(m)
	return claimcheck.IsClaimChecked(h) || claimcheck.IsAWSPointer(h)
}

// plainHeaders is a consumer message's headers as a pointer, so that the
// consumer wrappers' fast paths can pass them as claimcheck.Headers (to
// IsClaimChecked and Checker.Plain) without allocating: a Headers value
// (two words) would be copied to the heap each time.
type plainHeaders []*sarama.RecordHeader

func consumerHeaders(m *sarama.ConsumerMessage) *plainHeaders { return (*plainHeaders)(&m.Headers) }

func (h *plainHeaders) headers() Headers              { return Headers{c: (*[]*sarama.RecordHeader)(h)} }
func (h *plainHeaders) Get(key string) (string, bool) { return h.headers().Get(key) }
func (h *plainHeaders) Set(key, value string)         { h.headers().Set(key, value) }
func (h *plainHeaders) Del(key string)                { h.headers().Del(key) }
func (h *plainHeaders) WireSize() int                 { return h.headers().WireSize() }

var _ claimcheck.Headers = (*plainHeaders)(nil)
