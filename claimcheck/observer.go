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
)

// Event describes one offload or rehydration, successful or not. Messages
// that pass through untouched are not reported.
type Event struct {
	Op         string
	Topic      string
	Address    string
	Size       int64 // payload bytes
	StoredSize int64 // bytes the backend holds (after compression)
	Duration   time.Duration
	Err        error // nil on success
}

// Observer receives events. Implementations must be safe for concurrent use
// and quick: they run on the message path. An OpenTelemetry observer is one
// implementation away.
type Observer interface {
	Observe(ctx context.Context, ev Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context, ev Event)

func (f ObserverFunc) Observe(ctx context.Context, ev Event) { f(ctx, ev) }

type nopObserver struct{}

func (nopObserver) Observe(context.Context, Event) {}

// Observers fans events out to several observers.
func Observers(obs ...Observer) Observer {
	return ObserverFunc(func(ctx context.Context, ev Event) {
		for _, o := range obs {
			o.Observe(ctx, ev)
		}
	})
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
	offloaded, rehydrated          atomic.Int64
	offloadBytes, rehydrateBytes   atomic.Int64
	storedBytes                    atomic.Int64
	offloadFailed, rehydrateFailed atomic.Int64
	deleted, deleteFailed          atomic.Int64
}

// CountersSnapshot is a copy of Counters at one moment.
type CountersSnapshot struct {
	Offloaded, Rehydrated              int64
	OffloadedBytes, RehydratedBytes    int64
	StoredBytes                        int64
	OffloadFailures, RehydrateFailures int64
	Deleted, DeleteFailures            int64
}

// Observe implements Observer.
func (c *Counters) Observe(_ context.Context, ev Event) {
	switch {
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
		Offloaded: c.offloaded.Load(), Rehydrated: c.rehydrated.Load(),
		OffloadedBytes: c.offloadBytes.Load(), RehydratedBytes: c.rehydrateBytes.Load(),
		StoredBytes:     c.storedBytes.Load(),
		OffloadFailures: c.offloadFailed.Load(), RehydrateFailures: c.rehydrateFailed.Load(),
		Deleted: c.deleted.Load(), DeleteFailures: c.deleteFailed.Load(),
	}
}
