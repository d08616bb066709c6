package stash

import (
	"context"
	"fmt"

	"github.com/claimstash/claimstash/stash/driver"
)

// Operations an OpHook is told of.
const (
	OpCreate   = "create" // Create and CreateFrom
	OpRetrieve = "retrieve"
	OpOpen     = "open"
	OpStat     = "stat"
	OpDelete   = "delete"
	OpSweep    = "sweep"
	OpShare    = "share"
)

// A Hook observes an engine: a value that implements DriverHook, OpHook or
// both (tracing and metrics are the use). WithHooks refuses a value that
// implements neither.
type Hook any

// A DriverHook wraps the driver of every backend the engine is built with,
// once, when New returns, so that a backend is covered without code of its
// own. The wrapper must forward the optional capabilities of the driver it
// wraps (driver.Updater, driver.Lister, driver.Signer, ...), and claim none
// that the wrapped driver lacks, since the engine finds them by type
// assertion: return it through driver.Wrap, which does both.
type DriverHook interface {
	WrapDriver(scheme string, d driver.Driver) driver.Driver
}

// An OpHook is told when an engine operation (Op* constants) starts, with
// the name (OpCreate) or address it concerns, and returns the context the
// operation runs with and a function the engine calls once, when the
// operation returns, with its result: the stash it created, read or
// inspected (nil for OpDelete, OpSweep and OpShare, and on failure) and the
// error it returns. OpOpen's result is the stash of the reader it returns;
// reading it is not part of the operation.
type OpHook interface {
	StartOp(ctx context.Context, op, target string) (context.Context, func(s *Stash, err error))
}

// WithHooks adds hooks to the engine, in order: DriverHooks wrap the
// drivers in the order given (the last one outermost), OpHooks are started
// in order and ended in reverse.
func WithHooks(hooks ...Hook) Option {
	return engineOption(func(e *Engine) error {
		for _, h := range hooks {
			dh, isDriver := h.(DriverHook)
			oh, isOp := h.(OpHook)
			if !isDriver && !isOp {
				return fmt.Errorf("stash: WithHooks: %T is neither a driver hook nor an operation hook", h)
			}
			if isDriver {
				e.driverHooks = append(e.driverHooks, dh)
			}
			if isOp {
				e.opHooks = append(e.opHooks, oh)
			}
		}
		return nil
	})
}

// wrapDrivers applies the driver hooks to every backend.
func (e *Engine) wrapDrivers() {
	for _, b := range e.backends {
		for _, h := range e.driverHooks {
			b.driver = h.WrapDriver(b.scheme, b.driver)
		}
	}
}

func nopDone(*Stash, error) {}

// startOp starts op on every OpHook.
func (e *Engine) startOp(ctx context.Context, op, target string) (context.Context, func(*Stash, error)) {
	switch len(e.opHooks) {
	case 0:
		return ctx, nopDone
	case 1:
		return e.opHooks[0].StartOp(ctx, op, target)
	}
	dones := make([]func(*Stash, error), len(e.opHooks))
	for i, h := range e.opHooks {
		ctx, dones[i] = h.StartOp(ctx, op, target)
	}
	return ctx, func(s *Stash, err error) {
		for i := len(dones) - 1; i >= 0; i-- {
			dones[i](s, err)
		}
	}
}
