package service

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// errStalled is a request body that brought nothing for the stall timeout:
// 408.
var errStalled = errors.New("the request body stalled")

// stallChunk is the most a response sends under one write deadline: a
// client must take this much every stall timeout.
const stallChunk = 1 << 20

// guard cuts off a client that stops sending its body or stops reading the
// response: every read of the body gets d to bring a byte, every write of
// the response (at most stallChunk of a body copied from a reader) d to be
// taken. Without it a request could hold its goroutine, its file and its
// connection for ever, since the server has no overall read or write
// timeout (bodies may be large).
//
// The deadlines are the connection's. The read deadline is cleared when
// the body ends (net/http then watches the connection with a read of its
// own, which a stale deadline would cut short). done, called when the
// handler returns, gives what net/http still does with the request its
// deadlines: d for the response's last buffered bytes (net/http clears the
// write deadline after them), and for what it reads of a body the handler
// left unread, now if the body stalled and d otherwise, after which
// net/http closes the connection instead of waiting for the rest (and sets
// the next request's read deadlines itself).
//
// The body is wrapped in a copy of r: net/http looks at the request it made
// after the handler (is its body one that waits for 100 Continue?).
func guard(w http.ResponseWriter, r *http.Request, d time.Duration) (_ http.ResponseWriter, _ *http.Request, done func()) {
	if d <= 0 {
		return w, r, func() {}
	}
	rc := http.NewResponseController(w)
	var b *stallBody
	if r.Body != nil && r.Body != http.NoBody {
		b = &stallBody{ReadCloser: r.Body, rc: rc, d: d}
		r2 := *r
		r2.Body = b
		r = &r2
	}
	return &stallWriter{ResponseWriter: w, rc: rc, d: d}, r, func() {
		_ = rc.SetWriteDeadline(time.Now().Add(d))
		switch {
		case b == nil || b.ended.Load():
		case b.stalled.Load():
			_ = rc.SetReadDeadline(time.Now())
		default:
			_ = rc.SetReadDeadline(time.Now().Add(d))
		}
	}
}

type stallBody struct {
	io.ReadCloser
	rc             *http.ResponseController
	d              time.Duration
	ended, stalled atomic.Bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		_ = b.rc.SetReadDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.stalled.Store(true)
			return n, fmt.Errorf("%w: no byte for %s", errStalled, b.d)
		}
		b.ended.Store(true)
	}
	return n, err
}

type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// ReadFrom copies src in pieces of stallChunk, each under its own
// deadline, through the wrapped writer's ReadFrom (net/http's sends a file
// by sendfile).
func (w *stallWriter) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
		lr := &io.LimitedReader{R: src, N: stallChunk}
		n, err := io.Copy(w.ResponseWriter, lr) // the wrapped writer's ReadFrom, if it has one
		total += n
		if err != nil || lr.N > 0 {
			// An error, or src ended before the piece did.
			return total, err
		}
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
