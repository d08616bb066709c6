package ccnats

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
)

// The server's max_payload. NATS refuses a message whose body and header
// block together are over it (nats.ErrMaxPayload), so the publishers
// claim-check such a message even under the checker's threshold, unless
// the policy keeps it in the message (overCap).

// minContract is the least the contract's headers add to a reference:
// claimstash-version and claimstash-size lines, the size one digit. An AWS
// pointer (a JSON array naming a bucket and key) and its one size header
// take more.
const minContract = len(claimcheck.HeaderVersion) + len(claimcheck.ContractVersion) + lineFraming +
	len(claimcheck.HeaderSize) + 1 + lineFraming

// maxPayload is the publishers' view of their connection's max_payload.
// nats.go reads it under the connection's lock, which every message would
// pay; the publishers keep the value read last here and read it afresh
// only off the fast path: for a message over the value kept (before
// claim-checking it for the cap), on every offload, and when nats.go
// refuses a message for it (stale: the client has reconnected to a server
// with a smaller one since).
type maxPayload struct {
	nc   *nats.Conn
	last atomic.Int64
}

func newMaxPayload(nc *nats.Conn) *maxPayload {
	m := &maxPayload{nc: nc}
	m.last.Store(nc.MaxPayload())
	return m
}

// read reads max_payload afresh and keeps it.
func (m *maxPayload) read() int64 {
	v := m.nc.MaxPayload()
	m.last.Store(v)
	return v
}

// stale reports whether err is nats.go's refusal of a message for
// max_payload (nothing was sent) under a max_payload smaller than the one
// kept: the message was let through on a stale value and is to be tried
// again.
func (m *maxPayload) stale(err error) bool {
	if err == nil || !errors.Is(err, nats.ErrMaxPayload) {
		return false
	}
	kept := m.last.Load()
	return m.read() < kept
}

// retry reports whether a message of body and h that nats.go refused with
// err is to be sent again, claim-checked: the max_payload it passed on was
// stale, and under the server's it is one overCap claim-checks.
func (m *maxPayload) retry(err error, cc *claimcheck.Checker, body []byte, h nats.Header) bool {
	return m.stale(err) && overCap(m, cc, body, h)
}

// overCap reports whether the publishers claim-check a message of body and
// h, which the checker would send as it is, because it is over the
// connection's max_payload: its wire size (body and Header.WireSize) is
// over it, the checker offloads by size (mode Auto: in Never mode it goes
// out as it is, and NATS refuses it; in Always mode the checker offloads it
// anyway), the producer set no claimstash-offload override ("never" keeps
// it in the message), and it is not marked already (never claim-check
// twice). The AWS pointer contract is no exception: its consumers read a
// pointer whatever the size.
//
// What it costs a message the checker passes: a body no longer than the
// shortest reference could be is never claim-checked for the cap (the
// reference would be no smaller); for a longer one, the max_payload kept
// is loaded (an atomic load), and where it is at least the checker's
// threshold nothing more is done: every message the checker passes fits.
// Only under a cap below the threshold are the headers' sizes added up,
// and max_payload is read afresh only for a message over it.
func overCap(mp *maxPayload, cc *claimcheck.Checker, body []byte, h nats.Header) bool {
	if cc.Mode() != claimcheck.Auto || len(body) <= cc.MinReference()+minContract {
		return false
	}
	threshold := int64(cc.Threshold())
	limit := mp.last.Load()
	if limit >= threshold {
		return false // the threshold is the tighter limit (stale: see maxPayload.stale)
	}
	n := int64(len(body))
	if n <= limit && len(h) > 0 {
		n += int64(wireSize(h))
	}
	if n <= limit {
		return false
	}
	// Over the value kept: is it over the server's?
	if limit = mp.read(); limit <= 0 || limit >= threshold || n <= limit {
		return false // unknown (nats.go decides), or it fits
	}
	return cc.ForLimit(exactHeader(h))
}

// checkReference returns an error, before anything is stored, when the
// reference to a message of body and h (its address, the contract's
// headers and the producer's headers, which the reference keeps) cannot
// fit nc's max_payload however short its address: the stash would be
// written for a message NATS refuses. It returns nil when the checker
// would not offload the message, or when the reference may fit; one that
// fits only with an address shorter than the stash gets is refused by
// NATS after the write (nats.ErrMaxPayload), and the stash is left to its
// TTL.
func checkReference(mp *maxPayload, cc *claimcheck.Checker, subj string, body []byte, h claimcheck.Headers, src nats.Header) error {
	limit := mp.last.Load() // offload has just read it
	if limit <= 0 {
		return nil
	}
	least := int64(referenceFloor(cc, len(body), src))
	if least <= limit {
		return nil
	}
	if !cc.Stores(body, h) {
		return nil // sent as it is, or Offload's error
	}
	return &claimcheck.Error{Op: "offload", Topic: subj, Err: fmt.Errorf(
		"%w: the reference with the message's headers would be at least %d bytes, over the server's max_payload of %d; nothing was stored",
		nats.ErrMaxPayload, least, limit)}
}

// referenceFloor is the fewest bytes the reference to a message of size
// bytes with the headers h takes on the wire: h less what Offload removes
// or replaces, the contract's headers, and the shortest address.
func referenceFloor(cc *claimcheck.Checker, size int, h nats.Header) int {
	n := hdrFraming
	for k, vs := range h {
		if claimcheck.Rewritten(k) {
			continue
		}
		for _, v := range vs {
			n += len(k) + len(textproto.TrimString(v)) + lineFraming
		}
	}
	digits := len(strconv.Itoa(size))
	if cc.Contract() == claimcheck.ContractAWSPointer {
		return n + len(claimcheck.AttrExtendedPayloadSize) + digits + lineFraming + cc.MinReference()
	}
	return n + minContract - 1 + digits + cc.MinReference()
}
