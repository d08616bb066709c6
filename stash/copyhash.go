package stash

import (
	"bytes"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"
)

// Copying a payload into fresh memory costs about as much as hashing it
// (the first touch of fresh pages, more than the copy itself), so for large
// payloads the copy runs ahead on another core, chunk by chunk, while this
// one hashes the chunks already copied: the hash is of the copy, the bytes
// that are returned or stored.
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
	helped := -1 // the highest chunk the helper reported
	for k := range c.n {
		// Take chunk k unless the helper has: chunks are taken in
		// order, by either side.
		if c.next.CompareAndSwap(int64(k), int64(k+1)) {
			c.copy(k)
		} else {
			for helped < k {
				helped = <-c.done
			}
		}
		h.Write(c.chunk(c.dst, k))
	}
	c.wg.Wait()
	return c.dst
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
	for {
		k := int(c.next.Add(1) - 1)
		if k >= c.n {
			return
		}
		c.copy(k)
		c.done <- k
	}
}
