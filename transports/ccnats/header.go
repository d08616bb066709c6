package ccnats

import (
	"net/textproto"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
)

// Header adapts nats.Header to claimcheck.Headers. NATS header names are
// case-sensitive, and so is Header: it writes the contract's exact
// lowercase names (claimcheck.HeaderVersion, ...) and reads any other name
// exactly; a contract header it also finds under its canonical name
// (canonicalName), and Del removes both. A key with several values reads as
// its first.
//
// A nil Header reads as empty; Set on it panics, as on a nil map.
type Header nats.Header

var _ claimcheck.Headers = Header(nil)

// Get returns the first value of key and whether key has one. A contract
// header is also found under its canonical name (Claimstash-Version, as
// net/textproto writes it): see canonicalName.
func (h Header) Get(key string) (string, bool) {
	v := h[key]
	if len(v) == 0 {
		if len(h) == 0 {
			return "", false
		}
		c := canonicalName(key)
		if c == "" {
			return "", false
		}
		if v = h[c]; len(v) == 0 {
			return "", false
		}
	}
	return v[0], true
}

// exactHeader is Header without the canonical names: the publishers' view
// of a message they are given (cowHeader's too). A producer writes the
// contract's exact names (claimcheck.HeaderOffload); only what arrives
// through other hops is read under canonical ones, and the publishers' fast
// path pays for no second lookup.
type exactHeader nats.Header

func (h exactHeader) Get(key string) (string, bool) {
	v := h[key]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}
func (h exactHeader) Set(key, value string) { h[key] = []string{value} }
func (h exactHeader) Del(key string)        { delete(h, key) }
func (h exactHeader) WireSize() int         { return wireSize(nats.Header(h)) }

// canonicalName is the canonical form of a contract header's name, the one
// net/textproto gives it ("Claimstash-Version"), or "" for any other name.
// nats.go before v1.19 canonicalised the names it was given, and so do
// HTTP bridges: through such a hop, a reference whose headers were read
// under their exact names alone would look like a plain message, and its
// handler would get the address as its payload. Exact names win where a
// message has both.
func canonicalName(key string) string {
	switch key {
	case claimcheck.HeaderVersion:
		return "Claimstash-Version"
	case claimcheck.HeaderSize:
		return "Claimstash-Size"
	case claimcheck.HeaderOffload:
		return "Claimstash-Offload"
	}
	return ""
}

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Del removes key, and a contract header under its canonical name too.
func (h Header) Del(key string) {
	delete(h, key)
	if c := canonicalName(key); c != "" {
		delete(h, c)
	}
}

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

func (c *cowHeader) Get(key string) (string, bool) { return exactHeader(c.cur()).Get(key) }
func (c *cowHeader) Set(key, value string)         { c.own(); c.dst[key] = []string{value} }
func (c *cowHeader) Del(key string) {
	if _, ok := c.cur()[key]; !ok {
		return
	}
	c.own()
	delete(c.dst, key)
}
func (c *cowHeader) WireSize() int { return wireSize(c.cur()) }
