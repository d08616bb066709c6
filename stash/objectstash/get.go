package objectstash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Get implements driver.Driver. It asks for the first ParallelAbove bytes
// as a range: an object that fits is one streamed request; a larger one
// streams those bytes while the rest is fetched in parallel ranges of
// PartSize, at most Concurrency at a time, and handed out in order. Every
// range must come from the same version of the object (its creation time),
// or the read fails with driver.ErrIntegrity.
func (s *Store) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := s.getObject(ctx, ns, key)
	if err != nil || a.Size != sizeUnknown {
		return rc, a, err
	}
	return countDecoded(rc, a)
}

func (s *Store) getObject(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	o, err := parseKey(ns, key)
	if err != nil {
		return nil, nil, err
	}
	resp, err := s.get(ctx, o, 0, s.o.parallelAbove)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable { // empty
		release(resp)
		if resp, err = s.get(ctx, o, -1, 0); err != nil {
			return nil, nil, err
		}
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer release(resp)
		return nil, nil, statusError(resp)
	}
	a, err := attrsFrom(resp.Header, o.key)
	if err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	// The size a reader sizes its buffer by must be the one the response
	// carries: a server whose headers disagree is lying in one of them.
	if resp.StatusCode == http.StatusOK {
		if resp.ContentLength >= 0 && resp.ContentLength != a.StoredSize {
			resp.Body.Close()
			return nil, nil, fmt.Errorf("%w: objectstash: a response of %d bytes for an object of %d", driver.ErrIntegrity, resp.ContentLength, a.StoredSize)
		}
		return exactBody(resp, a.StoredSize), a, nil
	}
	first, total, err := contentRange(resp.Header.Get("Content-Range"))
	if err != nil || first.start != 0 || total != a.StoredSize ||
		resp.ContentLength >= 0 && resp.ContentLength != first.end-first.start+1 {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("%w: objectstash: Content-Range %q (%d bytes) for an object of %d bytes", driver.ErrIntegrity, resp.Header.Get("Content-Range"), resp.ContentLength, a.StoredSize)
	}
	if first.end+1 >= total {
		return exactBody(resp, total), a, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &rangedReader{cur: exactBody(resp, first.end+1), cancel: cancel, queue: make(chan chan part, s.o.concurrency), pool: &s.bufs}
	r.wg.Add(1)
	go s.fetchRest(rctx, r, o, first.end+1, total, resp.Header.Get("x-sn-time-created"))
	return r, a, nil
}

func (s *Store) get(ctx context.Context, o object, off, n int64) (*http.Response, error) {
	req, err := s.request(ctx, http.MethodGet, o, osauth.Read, nil)
	if err != nil {
		return nil, err
	}
	if off >= 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	}
	return s.do(req)
}

// exactBody is resp's body, which must be n bytes. With a Content-Length
// (checked against n before) net/http holds the body to it; without one
// (chunked), a body that ends early or runs on is driver.ErrIntegrity,
// never read as the object.
func exactBody(resp *http.Response, n int64) io.ReadCloser {
	if resp.ContentLength >= 0 {
		return resp.Body
	}
	return &sizedBody{rc: resp.Body, left: n}
}

type sizedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *sizedBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		// Past the size: the body must end here.
		var one [1]byte
		n, err := io.ReadFull(b.rc, one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: objectstash: the response runs past the object's size", driver.ErrIntegrity)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		if b.left > 0 {
			return n, fmt.Errorf("%w: objectstash: the response ends %d bytes short of the object", driver.ErrIntegrity, b.left)
		}
		if b.left == 0 && n > 0 {
			return n, nil // checked for more on the next read
		}
	}
	return n, err
}

func (b *sizedBody) Close() error { return b.rc.Close() }

type span struct{ start, end int64 }

func contentRange(v string) (span, int64, error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return span{}, 0, errors.New("not a byte range")
	}
	rng, tot, ok := strings.Cut(rest, "/")
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return span{}, 0, errors.New("malformed")
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || end >= total {
		return span{}, 0, errors.New("malformed")
	}
	return span{start, end}, total, nil
}

// part is one fetched range.
type part struct {
	buf *[]byte
	n   int
	err error
}

func (s *Store) fetchRest(ctx context.Context, r *rangedReader, o object, from, total int64, created string) {
	defer r.wg.Done()
	defer close(r.queue)
	for off := from; off < total; off += s.o.partSize {
		n := min(s.o.partSize, total-off)
		ch := make(chan part, 1)
		select {
		case r.queue <- ch:
		case <-ctx.Done():
			return
		}
		r.wg.Add(1)
		go func(off, n int64) {
			defer r.wg.Done()
			ch <- s.fetchPart(ctx, o, off, n, created)
		}(off, n)
	}
}

func (s *Store) fetchPart(ctx context.Context, o object, off, n int64, created string) part {
	resp, err := s.get(ctx, o, off, n)
	if err != nil {
		return part{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		switch resp.StatusCode {
		case http.StatusNotFound:
			return part{err: fmt.Errorf("%w: objectstash: object deleted while read", driver.ErrIntegrity)}
		case http.StatusOK:
			// It answered the first range, so it serves ranges: a
			// whole object now is another object, or a lie.
			return part{err: fmt.Errorf("%w: objectstash: the range at %d answered with a whole object", driver.ErrIntegrity, off)}
		}
		return part{err: statusError(resp)}
	}
	got, _, err := contentRange(resp.Header.Get("Content-Range"))
	if err != nil || got.start != off || got.end != off+n-1 || resp.Header.Get("x-sn-time-created") != created {
		return part{err: fmt.Errorf("%w: objectstash: object replaced while read", driver.ErrIntegrity)}
	}
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return part{err: fmt.Errorf("%w: objectstash: the range at %d has %d bytes, its Content-Range %d", driver.ErrIntegrity, off, resp.ContentLength, n)}
	}
	bp := s.bufs.Get().(*[]byte)
	m, err := io.ReadFull(resp.Body, (*bp)[:n])
	if err != nil {
		s.bufs.Put(bp)
		if err == io.ErrUnexpectedEOF && resp.ContentLength < 0 {
			// Not a connection cut against a length: a body that ends
			// before its Content-Range does.
			return part{err: fmt.Errorf("%w: objectstash: the range at %d ends %d bytes short", driver.ErrIntegrity, off, n-int64(m))}
		}
		return part{err: fmt.Errorf("objectstash: reading range at %d: %w", off, err)}
	}
	return part{buf: bp, n: m}
}

// rangedReader hands out the first response's body, then the fetched parts
// in order.
type rangedReader struct {
	cur    io.ReadCloser
	queue  chan chan part
	cancel context.CancelFunc
	wg     sync.WaitGroup

	buf    *[]byte
	data   []byte
	err    error
	closed bool
	pool   *sync.Pool
}

func (r *rangedReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if err == io.EOF {
				r.cur.Close()
				r.cur = nil
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				r.err = err
			}
			return n, err
		}
		if len(r.data) > 0 {
			n := copy(p, r.data)
			r.data = r.data[n:]
			return n, nil
		}
		r.release()
		ch, ok := <-r.queue
		if !ok {
			r.err = io.EOF
			return 0, io.EOF
		}
		pt := <-ch
		if pt.err != nil {
			r.err = pt.err
			return 0, pt.err
		}
		r.buf, r.data = pt.buf, (*pt.buf)[:pt.n]
	}
}

func (r *rangedReader) release() {
	if r.buf != nil && r.pool != nil {
		r.pool.Put(r.buf)
	}
	r.buf, r.data = nil, nil
}

// Close stops the fetches still running and waits for them.
func (r *rangedReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	if r.cur != nil {
		r.cur.Close()
	}
	for range r.queue { // fetches see the cancelled context and end
	}
	r.wg.Wait()
	r.release()
	if r.err == nil {
		r.err = errors.New("objectstash: read after close")
	}
	return nil
}

// sizeUnknown marks, between attrsFrom and Get or Stat, a zstd object
// whose decoded size no header gives: objectstore's clients send none, and
// objectstore's own server counts none (claimstash's does). It never
// leaves the package.
const sizeUnknown = -1

// maxCounted bounds the decoded size countDecoded counts to: the engine's
// default largest payload. maxWindow is the largest zstd window it
// decodes with, the engine's own limit (and that of claimstash's server
// when it counts).
const (
	maxCounted = stash.DefaultMaxSize
	maxWindow  = 8 << 20
	// maxCountedStored bounds the stored bytes countDecoded holds in
	// memory to count them.
	maxCountedStored = 256 << 20
)

// countDecoded reads the stored bytes of a zstd object whose decoded size
// no header gives into memory (as they arrive: the buffer grows with them;
// at most maxCountedStored of them),
// decodes them once to count their decoded size, and hands them back with
// that size, so that the engine can bound and check its decoding as for any
// other stash. Bytes that are not zstd, or that decode to more than
// stash.DefaultMaxSize (a bomb), are an error; the engine checks the digest
// when it decodes them again.
func countDecoded(rc io.ReadCloser, a *driver.Attributes) (io.ReadCloser, *driver.Attributes, error) {
	defer rc.Close()
	if a.StoredSize > maxCountedStored {
		return nil, nil, fmt.Errorf("%w: objectstash: a zstd object without a decoded size is counted in memory, up to %d stored bytes; this one has %d", driver.ErrTooLarge, maxCountedStored, a.StoredSize)
	}
	comp, err := io.ReadAll(io.LimitReader(rc, maxCountedStored)) // grows as the bytes arrive
	if err != nil {
		return nil, nil, err
	}
	dec, err := zstd.NewReader(bytes.NewReader(comp), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxWindow))
	if err != nil {
		return nil, nil, fmt.Errorf("objectstash: %w", err)
	}
	defer dec.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(dec, maxCounted+1))
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("%w: objectstash: a zstd object without a decoded size does not decode: %v", driver.ErrIntegrity, err)
	case n > maxCounted:
		return nil, nil, fmt.Errorf("%w: objectstash: a zstd object without a decoded size decodes to more than %d bytes", driver.ErrTooLarge, int64(maxCounted))
	}
	a.Size = n
	return io.NopCloser(bytes.NewReader(comp)), a, nil
}
