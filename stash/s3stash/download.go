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
	c.release = func() {} // until fetchOnce takes a buffer
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
	if c.buf == nil {
		// Only now, with the range answered, so that an endpoint that
		// claims an object larger than it serves costs no buffers.
		c.buf, c.release = r.s.getBuf(c.n)
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
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.cur.buf[r.pos:])
	r.pos += n
	return n, nil
}

// next releases the current chunk and waits for the following one; at the
// end of the object it sets r.err to io.EOF and returns it.
func (r *rangeReader) next() error {
	if r.cur != nil {
		r.cur.release()
		r.cur = nil
	}
	c, ok := <-r.queue
	if !ok {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return err
		}
		r.err = io.EOF
		return io.EOF
	}
	select {
	case <-c.done:
	case <-r.ctx.Done():
		<-c.done
	}
	if c.err != nil {
		c.release()
		r.err = wrap("get", r.bucket, r.key, c.err)
		return r.err
	}
	r.cur, r.pos = c, 0
	return nil
}

// WriteTo writes the rest of the object to w: the initial body as it
// arrives, then each range straight from its buffer, without the copy that
// Read makes into the caller's buffer. A failed write stops the reader.
func (r *rangeReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if r.err != nil {
		if r.err == io.EOF {
			return 0, nil
		}
		return 0, r.err
	}
	if r.head != nil {
		hr := &errReader{r: r.head}
		n, err := io.Copy(w, io.LimitReader(hr, r.headLeft))
		total += n
		r.headLeft -= n
		switch {
		case hr.err != nil && hr.err != io.EOF:
			r.err = fmt.Errorf("s3stash: get %s/%s: %w", r.bucket, r.key, hr.err)
			return total, r.err
		case err != nil: // the write failed
			r.err = err
			return total, err
		case r.headLeft > 0:
			r.err = fmt.Errorf("s3stash: get %s/%s: %w", r.bucket, r.key, io.ErrUnexpectedEOF)
			return total, r.err
		}
		r.head.Close()
		r.head = nil
	}
	for {
		if r.cur == nil || r.pos == len(r.cur.buf) {
			if err := r.next(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(r.cur.buf[r.pos:])
		total += int64(n)
		r.pos += n
		if err == nil && r.pos < len(r.cur.buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			r.err = err
			return total, err
		}
	}
}

// errReader remembers the error of its reader, to tell a failed read from
// a failed write in io.Copy (which may hand the reader to the writer's
// ReadFrom, so the writer itself is left unwrapped).
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
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
