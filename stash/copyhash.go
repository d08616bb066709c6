package stash

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
)

// Copying a payload into fresh memory costs about as much as hashing it
// (the first touch of fresh pages, more than the copy itself), so for large
// payloads the copy runs on another core: for Retrieve (cloneHashed) ahead,
// chunk by chunk, while this one hashes the chunks already copied, since
// the hash is of the copy, the bytes returned; for Create (cloneSummed)
// whole, while this one hashes the payload.
const (
	// copyAheadMin is the size from which cloneHashed copies ahead.
	copyAheadMin = 256 << 10
	// copyChunk is the unit of the copy and of the hand-over.
	copyChunk = 64 << 10
)

// cloneHashed returns a copy of src, having written the copy to h.
func cloneHashed(src []byte, h hash.Hash) []byte {
	if len(src) < copyAheadMin || runtime.GOMAXPROCS(0) < 2 {
		dst := bytes.Clone(src)
		if dst == nil {
			dst = []byte{}
		}
		h.Write(dst)
		return dst
	}
	// Fresh pages are not written by make (they are zero already), and
	// reused ones are cleared at cache speed: the cost is in the first
	// touch, which the helper takes.
	c := &copier{src: src, dst: make([]byte, len(src)), n: (len(src) + copyChunk - 1) / copyChunk}
	c.done = make(chan int, c.n)
	c.wg.Add(1)
	go c.help()
	// Chunks are taken in order, by either side, from c.next. This side
	// hashes them in order; while the chunk it needs is still being
	// copied by the helper, it copies the next one not taken instead.
	helped := -1              // the highest chunk the helper reported
	mine := make([]bool, c.n) // chunks this side copied
	for k := range c.n {
		for helped < k && !mine[k] {
			if c.next.CompareAndSwap(int64(k), int64(k+1)) {
				c.copy(k)
				mine[k] = true
				break
			}
			// The helper has chunk k.
			select {
			case helped = <-c.done:
				continue
			default:
			}
			if j := c.next.Load(); j < int64(c.n) && c.next.CompareAndSwap(j, j+1) {
				c.copy(int(j))
				mine[j] = true
				continue
			}
			helped = <-c.done
		}
		h.Write(c.chunk(c.dst, k))
	}
	c.wg.Wait()
	return c.dst
}

// cloneSummed returns a copy of payload and the SHA-256 of payload, made
// side by side (cloneAside). It is Create's: the digest is of the payload
// as given; what the backend keeps is the copy (bytes that a caller
// changed meanwhile, against the API, would fail their reads' check, never
// pass it).
func cloneSummed(payload []byte) ([]byte, [sha256.Size]byte) {
	var sum [sha256.Size]byte
	dst := cloneAside(payload, func(p []byte) { sum = sha256.Sum256(p) })
	return dst, sum
}

// cloneAside returns a copy of src, having called hash with src: a helper
// makes the copy while this goroutine hashes. The copy is bytes.Clone,
// whose memory is not zeroed first (make would clear a reused span before
// the copy writes it again); its page faults are the helper's. If the
// helper has not started when the hash is done (its core busy), this
// goroutine makes the copy itself, and the helper, when it runs, does
// nothing: never more than a hash and a copy, but for a helper stopped in
// the middle of its copy, which this goroutine waits for. Under
// copyAheadMin, or with one P, it copies, then hashes.
func cloneAside(src []byte, hash func([]byte)) []byte {
	if len(src) < copyAheadMin || runtime.GOMAXPROCS(0) < 2 {
		dst := clone(src)
		hash(src)
		return dst
	}
	c := &struct {
		taken atomic.Bool
		wg    sync.WaitGroup
		dst   []byte
	}{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if c.taken.CompareAndSwap(false, true) {
			c.dst = clone(src)
		}
	}()
	hash(src)
	if c.taken.CompareAndSwap(false, true) {
		return clone(src)
	}
	c.wg.Wait()
	return c.dst
}

// clone is bytes.Clone, never nil.
func clone(p []byte) []byte {
	if c := bytes.Clone(p); c != nil {
		return c
	}
	return []byte{}
}

// copyRest copies the chunks not taken yet, reporting each on done.
func (c *copier) copyRest(done chan<- int) {
	for {
		k := int(c.next.Add(1) - 1)
		if k >= c.n {
			return
		}
		c.copy(k)
		done <- k
	}
}

type copier struct {
	src, dst []byte
	n        int
	next     atomic.Int64
	done     chan int // chunks the helper copied, in order
	wg       sync.WaitGroup
}

func (c *copier) chunk(p []byte, k int) []byte {
	return p[k*copyChunk : min((k+1)*copyChunk, len(p))]
}

func (c *copier) copy(k int) { copy(c.chunk(c.dst, k), c.chunk(c.src, k)) }

func (c *copier) help() {
	defer c.wg.Done()
	c.copyRest(c.done)
}
