package s3stash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// chunkAttempts bounds the fetches of one range when the body breaks off
// mid-read (the SDK retries failed requests, not failed bodies).
const chunkAttempts = 3

// chunk is one ranged GET, read whole into buf by its own goroutine.
type chunk struct {
	off, n  int64
	buf     []byte
	release func()
	err     error
	done    chan struct{}
}

// rangeReader yields an object in order: first the body of the initial GET
// (streamed), then ranges fetched in parallel, at most Concurrency ahead of
// the reader. Close stops the fetches and waits for them.
type rangeReader struct {
	s           *Store
	bucket, key string
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	head     io.ReadCloser // the initial body; nil once drained
	headLeft int64         // bytes head still owes
	queue    chan *chunk   // scheduled chunks, in order
	cur      *chunk
	pos      int // read position in cur.buf
	err      error
}

func (s *Store) newRangeReader(ctx context.Context, bucket, key string, head io.ReadCloser, headLen, total int64) *rangeReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &rangeReader{
		s: s, bucket: bucket, key: key, ctx: ctx, cancel: cancel,
		head: head, headLeft: headLen,
		// The reader's current chunk plus the queue's: Concurrency buffers.
		queue: make(chan *chunk, s.opts.Concurrency-1),
	}
	r.wg.Add(1)
	go r.schedule(headLen, total)
	return r
}

// schedule starts one fetch per chunk, blocking while Concurrency chunks are
// fetched or waiting to be read (the queue's capacity bounds the memory).
func (r *rangeReader) schedule(off, total int64) {
	defer r.wg.Done()
	defer close(r.queue)
	size := r.s.opts.PartSize
	for off < total {
		c := &chunk{off: off, n: min(size, total-off), done: make(chan struct{})}
		select {
		case r.queue <- c:
		case <-r.ctx.Done():
			return
		}
		r.wg.Add(1)
		go r.fetch(c)
		off += c.n
	}
}

func (r *rangeReader) fetch(c *chunk) {
	defer r.wg.Done()
	defer close(c.done)
	c.buf, c.release = r.s.getBuf(c.n)
	for attempt := 1; ; attempt++ {
		c.err = r.fetchOnce(c)
		if c.err == nil || r.ctx.Err() != nil || attempt == chunkAttempts || isNotFound(c.err) {
			return
		}
	}
}

func (r *rangeReader) fetchOnce(c *chunk) error {
	out, err := r.s.client.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(r.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", c.off, c.off+c.n-1)),
	}, quietRanges)
	if err != nil {
		return err
	}
	defer out.Body.Close()
	if aws.ToInt64(out.ContentLength) != c.n {
		return fmt.Errorf("range at %d: got %d bytes, want %d (object changed?)", c.off, aws.ToInt64(out.ContentLength), c.n)
	}
	if _, err := io.ReadFull(out.Body, c.buf); err != nil {
		return fmt.Errorf("range at %d: %w", c.off, err)
	}
	return nil
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.head != nil {
		n, err := r.head.Read(p[:min(int64(len(p)), r.headLeft)])
		r.headLeft -= int64(n)
		switch {
		case r.headLeft == 0:
			r.head.Close()
			r.head = nil
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF
			fallthrough
		case err != nil:
			r.err = fmt.Errorf("s3stash: get %s/%s: %w", r.bucket, r.key, err)
			return n, r.err
		}
		return n, nil
	}
	for r.cur == nil || r.pos == len(r.cur.buf) {
		if r.cur != nil {
			r.cur.release()
			r.cur = nil
		}
		c, ok := <-r.queue
		if !ok {
			if err := r.ctx.Err(); err != nil {
				r.err = err
				return 0, err
			}
			r.err = io.EOF
			return 0, io.EOF
		}
		select {
		case <-c.done:
		case <-r.ctx.Done():
			<-c.done
		}
		if c.err != nil {
			c.release()
			r.err = wrap("get", r.bucket, r.key, c.err)
			return 0, r.err
		}
		r.cur, r.pos = c, 0
	}
	n := copy(p, r.cur.buf[r.pos:])
	r.pos += n
	return n, nil
}

// Close stops the fetches still running and releases their buffers.
func (r *rangeReader) Close() error {
	r.cancel()
	if r.head != nil {
		r.head.Close()
		r.head = nil
	}
	if r.err == nil {
		r.err = errors.New("s3stash: read after close")
	}
	// Drain what is scheduled so every buffer goes back to the pool.
	for c := range r.queue {
		<-c.done
		c.release()
	}
	r.wg.Wait()
	if r.cur != nil {
		r.cur.release()
		r.cur = nil
	}
	return nil
}
