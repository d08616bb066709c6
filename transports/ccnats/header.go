package ccnats

import (
	"net/textproto"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
)

// Header adapts nats.Header to claimcheck.Headers. NATS header names are
// case-sensitive, and so is Header: it reads and writes the contract's
// exact lowercase names (claimcheck.HeaderVersion, ...), never a
// canonicalised form. A key with several values reads as its first.
//
// A nil Header reads as empty; Set on it panics, as on a nil map.
type Header nats.Header

var _ claimcheck.Headers = Header(nil)

// Get returns the first value of key and whether key has one.
func (h Header) Get(key string) (string, bool) {
	v := h[key]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Del removes key.
func (h Header) Del(key string) { delete(h, key) }

// WireSize is the size of the header block nats.go sends, which the
// server counts toward max_payload: the "NATS/1.0" line and the blank line
// that ends the block, and a "key: value" line for each value (its
// leading and trailing spaces trimmed, as nats.go sends it). No header at
// all is 0.
func (h Header) WireSize() int { return wireSize(nats.Header(h)) }

// Framing of the header block, as nats.go writes it.
const (
	hdrFraming  = len("NATS/1.0\r\n") + len("\r\n")
	lineFraming = len(": ") + len("\r\n")
)

func wireSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := hdrFraming
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(textproto.TrimString(v)) + lineFraming
		}
	}
	return n
}

// cowHeader is the publishers' view of an outgoing message's headers: it
// reads the caller's header and copies it on the first write, so a publish
// never changes the message the caller passed in, and one that is not
// offloaded copies nothing.
type cowHeader struct {
	src    nats.Header
	dst    nats.Header
	copied bool
}

var _ claimcheck.Headers = (*cowHeader)(nil)

func (c *cowHeader) cur() nats.Header {
	if c.copied {
		return c.dst
	}
	return c.src
}

func (c *cowHeader) own() {
	if c.copied {
		return
	}
	c.dst = make(nats.Header, len(c.src)+2)
	for k, v := range c.src {
		c.dst[k] = slices.Clone(v)
	}
	c.copied = true
}

func (c *cowHeader) Get(key string) (string, bool) { return Header(c.cur()).Get(key) }
func (c *cowHeader) Set(key, value string)         { c.own(); c.dst[key] = []string{value} }
func (c *cowHeader) Del(key string) {
	if _, ok := c.cur()[key]; !ok {
		return
	}
	c.own()
	delete(c.dst, key)
}
func (c *cowHeader) WireSize() int { return wireSize(c.cur()) }
