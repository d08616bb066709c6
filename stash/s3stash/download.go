package s3stash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash/driver"
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
//
// Every range is pinned to the version the initial GET read: If-Match on
// its ETag. A range the store refuses with 412 means the object was
// written again meanwhile. If what is there now is the same stash stored
// the same way (digest, stored size and encoding in its attributes: a copy
// onto itself that rewrote its metadata, which gives a multipart object a
// new ETag on MinIO, or the same content written again), its bytes are the
// same, and the reader pins the new ETag and goes on; otherwise the read
// fails with an error that says the object changed while it was read
// (ErrNotFound: the version being read is gone), instead of stitching two
// versions together for the digest check to refuse at the end.
type rangeReader struct {
	s           *Store
	bucket, key string
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	attrs *driver.Attributes // as the initial GET read them
	pinMu sync.Mutex
	pin   *string // the ETag every range must match; nil: the store sent none

	head     io.ReadCloser // the initial body; nil once drained
	headLeft int64         // bytes head still owes
	queue    chan *chunk   // scheduled chunks, in order
	cur      *chunk
	pos      int // read position in cur.buf
	err      error
}

func (s *Store) newRangeReader(ctx context.Context, bucket, key string, head io.ReadCloser, headLen, total int64, etag *string, attrs *driver.Attributes) *rangeReader {
	ctx, cancel := context.WithCancel(ctx)
	if aws.ToString(etag) == "" {
		etag = nil
	}
	r := &rangeReader{
		s: s, bucket: bucket, key: key, ctx: ctx, cancel: cancel,
		attrs: attrs, pin: etag,
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
		if c.err == nil || r.ctx.Err() != nil || isNotFound(c.err) || errors.As(c.err, new(*changedError)) {
			return
		}
		if attempt == chunkAttempts {
			if isPreconditionFailed(c.err) {
				// Written again on every attempt.
				c.err = &changedError{off: c.off, etag: aws.ToString(r.pinned()), err: c.err}
			}
			return
		}
	}
}

// pinned is the ETag the ranges must match now.
func (r *rangeReader) pinned() *string {
	r.pinMu.Lock()
	defer r.pinMu.Unlock()
	return r.pin
}

func (r *rangeReader) fetchOnce(c *chunk) error {
	if r.s.rangeHook != nil {
		r.s.rangeHook(c.off)
	}
	pin := r.pinned()
	out, err := r.s.client.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(r.key),
		Range:   aws.String(fmt.Sprintf("bytes=%d-%d", c.off, c.off+c.n-1)),
		IfMatch: pin,
	}, quietRanges)
	if err != nil {
		if pin != nil && isPreconditionFailed(err) {
			return r.repin(c.off, pin, err)
		}
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

// repin handles a range refused because the object no longer has the ETag
// pin: it returns refused (to fetch the range again) once the ranges are
// pinned to what is there now, if that is the same stash stored the same
// way, and otherwise the error that the object changed while it was read.
func (r *rangeReader) repin(off int64, pin *string, refused error) error {
	r.pinMu.Lock()
	defer r.pinMu.Unlock()
	if r.pin != pin {
		return refused // another range has pinned the new version
	}
	out, err := r.s.client.HeadObject(r.ctx, &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key)})
	if err != nil {
		return err // ErrNotFound if it is gone
	}
	now, err := decodeAttrs(out.Metadata, out.ContentLength, out.LastModified, out.ContentType)
	if err != nil || aws.ToString(out.ETag) == "" || aws.ToString(out.ETag) == aws.ToString(pin) ||
		now.Digest != r.attrs.Digest || now.StoredSize != r.attrs.StoredSize || now.Encoding != r.attrs.Encoding {
		return &changedError{off: off, etag: aws.ToString(pin), err: refused}
	}
	r.pin = out.ETag
	return refused
}

// changedError is a range refused because the object is no longer the
// version the read began with. It matches driver.ErrNotFound (that version
// is gone), and the store's answer (412 PreconditionFailed) stays reachable
// with errors.As.
type changedError struct {
	off  int64
	etag string
	err  error
}

func (e *changedError) Error() string {
	return fmt.Sprintf("object changed while it was read: the range at byte %d no longer matches the version first read (ETag %s): %v", e.off, e.etag, e.err)
}

func (e *changedError) Unwrap() []error { return []error{driver.ErrNotFound, e.err} }

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
