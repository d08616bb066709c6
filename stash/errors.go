package stash

import (
	"fmt"

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
)

// Error gives the context of a failed operation: which operation, on which
// address (or name, before there is an address), and why. It unwraps to the
// cause, so errors.Is(err, ErrNotFound) and friends see through it.
type Error struct {
	Op      string // "create", "retrieve", "open", "stat", "delete", "share", "sweep"
	Address string // the address, or the name for a create that failed early
	Err     error
}

func (e *Error) Error() string {
	if e.Address == "" {
		return fmt.Sprintf("stash: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("stash: %s %s: %v", e.Op, e.Address, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func opError(op, addr string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Address: addr, Err: err}
}

// invalid builds an ErrInvalidAddress with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidAddress, fmt.Sprintf(format, args...))
}
