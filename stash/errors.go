package stash

import (
	"fmt"
	"strings"

	"github.com/claimstash/claimstash/stash/driver"
)

// Sentinel errors; test with errors.Is. They are the same values as the
// driver package's, so drivers and users compare against one set.
var (
	ErrNotFound       = driver.ErrNotFound
	ErrExpired        = driver.ErrExpired // errors.Is(ErrExpired, ErrNotFound) is true
	ErrIntegrity      = driver.ErrIntegrity
	ErrInvalidAddress = driver.ErrInvalidAddress
	ErrUnsupported    = driver.ErrUnsupported
	ErrTooLarge       = driver.ErrTooLarge
	// ErrForbidden is a share link that is refused: its signature does not
	// verify (a tampered path, expiry, signature or key id, or a retired
	// key), its server answered 403, or it points at an origin the engine's
	// LinkFetcher does not trust. A refused link never yields data.
	// errors.Is(ErrForbidden, ErrInvalidAddress) is true.
	ErrForbidden = driver.ErrForbidden
)

// Error gives the context of a failed operation: which operation, on which
// address (or name, before there is an address), and why. It unwraps to the
// cause, so errors.Is(err, ErrNotFound) and friends see through it.
//
// Errors are wrapped once: drivers classify their failures (wrapping one of
// the sentinels, as Go CDK drivers return an ErrorCode) and say what their
// store answered, without naming the object; the engine wraps that in one
// Error naming the operation and the address. The message reads
//
//	stash: retrieve file://orders/invoice.3f0a…: not found: filestash: openat: no such file or directory
type Error struct {
	Op      string // "create", "retrieve", "open", "stat", "delete", "share", "sweep"
	Address string // the address, or the name for a create that failed early
	Err     error
}

func (e *Error) Error() string {
	// The cause's own "stash: " prefix would repeat this one.
	cause := strings.TrimPrefix(fmt.Sprint(e.Err), "stash: ")
	if e.Address == "" {
		return "stash: " + e.Op + ": " + cause
	}
	return "stash: " + e.Op + " " + DisplayAddress(e.Address) + ": " + cause
}

func (e *Error) Unwrap() error { return e.Err }

// opError wraps err once: an error that is already an *Error (from a nested
// engine call) is returned as it is.
func opError(op, addr string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*Error); ok {
		return err
	}
	return &Error{Op: op, Address: addr, Err: err}
}

// invalid builds an ErrInvalidAddress with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidAddress, fmt.Sprintf(format, args...))
}
