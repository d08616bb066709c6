package stash

import "sync"

// keptPool is a sync.Pool that keeps up to keep values (none: a plain
// sync.Pool) for good. The
// values it pools (zstd encoders, spool buffers) cost megabytes each to
// allocate, and a sync.Pool alone drops them at every other GC (and, under
// the race detector, a quarter of the values put back), so a steady stream
// of payloads would pay that allocation again and again. Values beyond the
// kept ones, for concurrent calls, go to the sync.Pool.
type keptPool[T any] struct {
	kept chan T
	pool sync.Pool
}

func newKeptPool[T any](keep int, fresh func() T) *keptPool[T] {
	return &keptPool[T]{kept: make(chan T, keep), pool: sync.Pool{New: func() any { return fresh() }}}
}

func (p *keptPool[T]) get() T {
	select {
	case v := <-p.kept:
		return v
	default:
		return p.pool.Get().(T)
	}
}

func (p *keptPool[T]) put(v T) {
	select {
	case p.kept <- v:
	default:
		p.pool.Put(v)
	}
}
