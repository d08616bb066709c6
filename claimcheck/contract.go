package claimcheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The wire contract, version 1. It is the same for every transport; the
// README's "Wire contract" section is its specification.
//
// A claim-checked message has:
//   - a body that is exactly one stash address (UTF-8, see stash.ParseAddress);
//   - the header HeaderVersion, whose presence marks the message as
//     claim-checked and whose value is the contract version ("1");
//   - the header HeaderSize, the original body size in bytes: decimal
//     ASCII digits, no sign, no leading zero ("0" for an empty body);
//   - every header the producer set, unchanged.
//
// Header names are lowercase ASCII and are compared exactly: NATS and Kafka
// headers are case-sensitive. A message without HeaderVersion is not
// claim-checked and passes through byte-for-byte, headers too.
const (
	// ContractVersion is the version this package writes and reads.
	ContractVersion = "1"
	// HeaderVersion marks a claim-checked message and carries the contract
	// version.
	HeaderVersion = "claimstash-version"
	// HeaderSize carries the original body size in bytes.
	HeaderSize = "claimstash-size"
	// HeaderOffload is a producer-side per-message override: "always" or
	// "never". The checker removes it before the message is sent.
	HeaderOffload = "claimstash-offload"
)

// Override values for HeaderOffload.
const (
	OffloadAlways = "always"
	OffloadNever  = "never"
)

// Headers is the view of a message's headers the checker works through.
// Each transport adapts its own header type (Watermill metadata, Kafka record
// headers, NATS headers) to it.
type Headers interface {
	// Get returns the value of key and whether it is set.
	Get(key string) (string, bool)
	// Set sets key to value, replacing any value it had.
	Set(key, value string)
	// Del removes key.
	Del(key string)
	// WireSize is the number of bytes the headers take on the wire, as
	// near as the transport can tell (keys plus values is a fair
	// estimate). The threshold counts it.
	WireSize() int
}

// MapHeaders adapts a map[string]string (Watermill's message.Metadata has
// that type) to Headers. A nil MapHeaders reads as empty; Set on it panics,
// as on a nil map.
type MapHeaders map[string]string

func (m MapHeaders) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m MapHeaders) Set(k, v string)             { m[k] = v }
func (m MapHeaders) Del(k string)                { delete(m, k) }

// WireSize counts keys and values.
func (m MapHeaders) WireSize() int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// IsClaimChecked reports whether h marks a claim-checked message.
func IsClaimChecked(h Headers) bool {
	_, ok := h.Get(HeaderVersion)
	return ok
}

// Reference reads the contract from a claim-checked message without
// fetching anything: the address in the body and the original size. It is
// what a consumer without claimstash needs, written down as code. It returns
// ok == false for a message that is not claim-checked.
func Reference(body []byte, h Headers) (address string, size int64, ok bool, err error) {
	v, marked := h.Get(HeaderVersion)
	if !marked {
		return "", 0, false, nil
	}
	if v != ContractVersion {
		if n, ok := parseSize(v); ok && n > contractVersion {
			// A newer producer's: a newer consumer reads it.
			return "", 0, true, newerVersion{fmt.Errorf("%w: %s (this build reads %q; upgrade this consumer to read it)", ErrUnsupportedVersion, quote(v), ContractVersion)}
		}
		return "", 0, true, fmt.Errorf("%w: %s (this build reads %q)", ErrUnsupportedVersion, quote(v), ContractVersion)
	}
	sv, _ := h.Get(HeaderSize)
	size, valid := parseSize(sv)
	if !valid {
		return "", 0, true, fmt.Errorf("%w: header %s is %s", ErrMalformed, HeaderSize, quote(sv))
	}
	if len(body) > maxReference {
		return "", 0, true, fmt.Errorf("%w: body of %d bytes is longer than any stash address", ErrMalformed, len(body))
	}
	address = string(body)
	if address == "" || strings.ContainsAny(address, " \t\r\n") {
		return "", 0, true, fmt.Errorf("%w: body is not a stash address", ErrMalformed)
	}
	return address, size, true, nil
}

// contractVersion is ContractVersion as a number.
const contractVersion = 1

// newerVersion is the ErrUnsupportedVersion of a message in a later version
// of the contract than this build reads: it is not bad, only ahead of this
// consumer, so DiscardAfter never discards it.
type newerVersion struct{ error }

func (e newerVersion) Unwrap() error { return e.error }

func isNewerVersion(err error) bool {
	var n newerVersion
	return errors.As(err, &n)
}

// maxReference bounds the body of a claim-checked message: no stash
// address is longer (an inline one is at most 64 KiB, a share link
// stash.MaxLinkLength, any other stash.MaxAddressLength). A longer body is
// refused before it is copied or handed to an observer as an address.
const maxReference = 64 << 10

// parseSize reads HeaderSize: decimal ASCII digits in their one spelling
// (no sign, no leading zero, no space) that fit an int64. strconv.ParseInt
// alone would take "+5" and "007", which other readers may not.
func parseSize(s string) (int64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// CheckMark reports whether a message that is already marked (claim-checked
// by claimstash's contract, or an AWS extended client's S3 pointer: a relay
// forwarding what it received) carries a mark some consumer can read. It is
// ErrMalformed for a message with both marks, or a mark that its body or
// headers do not follow; nil for an unmarked message, and for a contract
// version this build does not read (a newer consumer's). Transports that
// send such a message as it is check it first, so that nothing goes out
// that every consumer would fail on.
func CheckMark(body []byte, h Headers) error {
	pointer, checked := IsAWSPointer(h), IsClaimChecked(h)
	var err error
	switch {
	case pointer && checked:
		err = fmt.Errorf("%w: the message carries both claimstash's contract and an AWS extended client's S3 pointer", ErrMalformed)
	case pointer:
		_, _, _, err = ParseAWSPointer(body, h)
	case checked:
		if _, _, _, err = Reference(body, h); errors.Is(err, ErrUnsupportedVersion) {
			err = nil
		}
	}
	return err
}
