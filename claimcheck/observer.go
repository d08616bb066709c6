package claimcheck

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Operations an Event reports.
const (
	OpOffload   = "offload"
	OpRehydrate = "rehydrate"
	// OpDelete reports a stash deleted after its message was acknowledged
	// (DeleteAfterAck).
	OpDelete = "delete"
	// OpPass reports an outgoing message that Offload sent as it was: the
	// policy kept its body in the message. With OpOffload it gives the
	// offload ratio.
	OpPass = "pass"
	// OpPlain reports an incoming message that was not claim-checked and
	// that Rehydrate delivered as it was.
	OpPlain = "plain"
)

// Event describes one offload or rehydration, successful or not, or one
// message that passed through untouched (OpPass, OpPlain; Size is then the
// body's length).
type Event struct {
	Op    string
	Topic string
	// Address is the stash's address as errors show it
	// (stash.DisplayAddress): a share link without its query, which is
	// its signature, so that no log or telemetry carries it; an address
	// that is not printable quoted and cut.
	Address    string
	Size       int64 // payload bytes
	StoredSize int64 // bytes the backend holds (after compression)
	Duration   time.Duration
	Err        error // nil on success
	// Headers are the message's headers: on a successful offload as they
	// will be sent, on a rehydration as they arrived (less the contract
	// headers once it succeeded). Nil for OpDelete. An observer may read
	// them and, on a successful OpOffload only, add trace-context headers;
	// it must not keep them after Observe returns.
	Headers Headers
}

// Observer receives events. Implementations must be safe for concurrent use
// and quick: they run on the message path. A panic in Observe is not
// recovered: it reaches the caller, and a message whose rehydration it
// interrupts is left as it arrived, still claim-checked.
type Observer interface {
	Observe(ctx context.Context, ev Event)
}

// A Starter is an Observer that also wants to know when an offload, a
// rehydration or a delete after ack begins (tracing does: it starts a span).
// The checker calls Start with the event so far (Op, Topic, Headers, and
// Size for an offload, Address for a rehydration or delete) before it
// touches the stash, runs the stash operation with the context Start
// returns, and passes that context to the Observe that ends the operation.
// Messages that pass through (OpPass, OpPlain) are observed without Start.
type Starter interface {
	Observer
	Start(ctx context.Context, ev Event) context.Context
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, ev Event)

func (f ObserverFunc) Observe(ctx context.Context, ev Event) { f(ctx, ev) }

type nopObserver struct{}

func (nopObserver) Observe(context.Context, Event) {}

// Observers fans events out to several observers. It calls the Start of
// those that are Starters, in order, each with the context the one before
// returned. Nil observers are left out.
func Observers(obs ...Observer) Observer {
	os := make(observers, 0, len(obs))
	for _, o := range obs {
		if o = usable(o); o != nil {
			os = append(os, o)
		}
	}
	return os
}

// usable returns o, or nil for an observer that would panic on its first
// event: nil, or a nil value of this package's observer types.
func usable(o Observer) Observer {
	switch v := o.(type) {
	case nil:
		return nil
	case *Counters:
		if v == nil {
			return nil
		}
	case ObserverFunc:
		if v == nil {
			return nil
		}
	}
	return o
}

type observers []Observer

func (os observers) Observe(ctx context.Context, ev Event) {
	for _, o := range os {
		o.Observe(ctx, ev)
	}
}

func (os observers) Start(ctx context.Context, ev Event) context.Context {
	for _, o := range os {
		if s, ok := o.(Starter); ok {
			ctx = s.Start(ctx, ev)
		}
	}
	return ctx
}

// SlogObserver logs successes at Debug and failures at Error.
func SlogObserver(l *slog.Logger) Observer {
	return ObserverFunc(func(ctx context.Context, ev Event) {
		attrs := []slog.Attr{
			slog.String("op", ev.Op), slog.String("topic", ev.Topic), slog.String("address", ev.Address),
			slog.Int64("size", ev.Size), slog.Duration("duration", ev.Duration),
		}
		if ev.Err != nil {
			l.LogAttrs(ctx, slog.LevelError, "claimcheck failed", append(attrs, slog.Any("err", ev.Err))...)
			return
		}
		l.LogAttrs(ctx, slog.LevelDebug, "claimcheck", append(attrs, slog.Int64("stored_size", ev.StoredSize))...)
	})
}

// Counters is an Observer that counts; read it with Snapshot.
type Counters struct {
	passed, plain                  atomic.Int64
	offloaded, rehydrated          atomic.Int64
	offloadBytes, rehydrateBytes   atomic.Int64
	storedBytes                    atomic.Int64
	offloadFailed, rehydrateFailed atomic.Int64
	deleted, deleteFailed          atomic.Int64
}

// CountersSnapshot is a copy of Counters at one moment.
type CountersSnapshot struct {
	// Passed counts outgoing messages sent as they were, Plain incoming
	// messages that were not claim-checked.
	Passed, Plain                      int64
	Offloaded, Rehydrated              int64
	OffloadedBytes, RehydratedBytes    int64
	StoredBytes                        int64
	OffloadFailures, RehydrateFailures int64
	Deleted, DeleteFailures            int64
}

// Observe implements Observer.
func (c *Counters) Observe(_ context.Context, ev Event) {
	switch {
	case ev.Op == OpPass:
		c.passed.Add(1)
	case ev.Op == OpPlain:
		c.plain.Add(1)
	case ev.Op == OpOffload && ev.Err != nil:
		c.offloadFailed.Add(1)
	case ev.Op == OpOffload:
		c.offloaded.Add(1)
		c.offloadBytes.Add(ev.Size)
		c.storedBytes.Add(ev.StoredSize)
	case ev.Op == OpRehydrate && ev.Err != nil:
		c.rehydrateFailed.Add(1)
	case ev.Op == OpRehydrate:
		c.rehydrated.Add(1)
		c.rehydrateBytes.Add(ev.Size)
	case ev.Op == OpDelete && ev.Err != nil:
		c.deleteFailed.Add(1)
	case ev.Op == OpDelete:
		c.deleted.Add(1)
	}
}

// Snapshot returns the counts so far.
func (c *Counters) Snapshot() CountersSnapshot {
	return CountersSnapshot{
		Passed: c.passed.Load(), Plain: c.plain.Load(),
		Offloaded: c.offloaded.Load(), Rehydrated: c.rehydrated.Load(),
		OffloadedBytes: c.offloadBytes.Load(), RehydratedBytes: c.rehydrateBytes.Load(),
		StoredBytes:     c.storedBytes.Load(),
		OffloadFailures: c.offloadFailed.Load(), RehydrateFailures: c.rehydrateFailed.Load(),
		Deleted: c.deleted.Load(), DeleteFailures: c.deleteFailed.Load(),
	}
}
