package claimcheck

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/claimstash/claimstash/stash"
)

// Sentinel errors; test with errors.Is. Failures of the stash itself unwrap
// to the stash package's sentinels (stash.ErrNotFound, stash.ErrExpired,
// stash.ErrIntegrity, ...).
var (
	// ErrNotAllowed: the address names a store this consumer was not
	// configured to read (another scheme, namespace or host).
	ErrNotAllowed = errors.New("claimcheck: address not allowed")
	// ErrUnsupportedVersion: the message carries a contract version this
	// build does not read.
	ErrUnsupportedVersion = errors.New("claimcheck: unsupported contract version")
	// ErrMalformed: the message is marked claim-checked but its headers or
	// body do not follow the contract.
	ErrMalformed = errors.New("claimcheck: malformed claim-checked message")
	// ErrBadOverride: HeaderOffload has a value other than "always" or "never".
	ErrBadOverride = errors.New("claimcheck: bad " + HeaderOffload + " header")
)

// Error gives the context of a failed offload or rehydrate. It unwraps to
// the cause. Its message names the address once: when the cause is a
// *stash.Error, which names it already, Error adds only the operation and
// the topic.
type Error struct {
	Op      string // "offload", "rehydrate" or "delete"
	Topic   string
	Address string // the stash address, when there is one
	Err     error
}

func (e *Error) Error() string {
	s := "claimcheck: " + e.Op
	if e.Topic != "" {
		s += " on " + displayTopic(e.Topic)
	}
	var se *stash.Error
	if e.Address != "" && !(errors.As(e.Err, &se) && se.Address != "") {
		s += " " + display(e.Address)
	}
	return fmt.Sprintf("%s: %v", s, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// display is how an error message shows an address or header value a
// message carried: as stash errors show one (stash.DisplayAddress), a share
// link without its query.
func display(s string) string { return stash.DisplayAddress(s) }

// displayTopic is how an error message shows a topic, which a publisher
// may choose (a NATS subject holds any byte but whitespace): as it is when
// it is printable ASCII, quoted and cut otherwise.
func displayTopic(s string) string {
	plain := len(s) <= displayMax
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] > ' ' && s[i] < 0x7f
	}
	if plain {
		return s
	}
	return quote(s)
}

// quote quotes s for an error message, cut to its first displayMax bytes.
func quote(s string) string {
	if len(s) <= displayMax {
		return strconv.QuoteToASCII(s)
	}
	return strconv.QuoteToASCII(s[:displayMax]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

const displayMax = 200
