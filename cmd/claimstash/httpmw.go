package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errStop ends a response body the client does not get (a 304, a 416).
var errStop = errors.New("response body not sent")

// conditional answers If-None-Match (304) and single Range requests (206)
// for a handler that answers 200 with Content-Length and an ETag, streaming
// a body that it verifies as it goes. The handler still reads every byte, so
// the digest is checked: the last byte of a range is sent only once the
// handler has returned normally, so a stash that fails its check mid-stream
// never gives a client a complete range.
func conditional(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inm, rng := r.Header.Get("If-None-Match"), r.Header.Get("Range")
		if inm == "" && (rng == "" || r.Method != http.MethodGet) {
			h.ServeHTTP(w, r)
			return
		}
		cw := &condWriter{ResponseWriter: w, req: r, inm: inm, rng: rng}
		h.ServeHTTP(cw, r)
		cw.finish()
	})
}

type condMode int

const (
	modeUndecided condMode = iota
	modePass
	modeDiscard
	modeRange
)

type condWriter struct {
	http.ResponseWriter
	req      *http.Request
	inm, rng string

	mode       condMode
	start, end int64 // the range, inclusive
	pos        int64 // body offset of the next byte the handler writes
	held       []byte
}

func (c *condWriter) WriteHeader(code int) {
	if c.mode != modeUndecided {
		return
	}
	c.mode = modePass
	hd := c.Header()
	if code != http.StatusOK {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	etag := hd.Get("ETag")
	if c.inm != "" && etag != "" && etagMatch(c.inm, etag) {
		for _, k := range []string{"Content-Type", "Content-Length", "Content-Disposition", "Content-Encoding"} {
			hd.Del(k)
		}
		c.mode = modeDiscard
		c.ResponseWriter.WriteHeader(http.StatusNotModified)
		return
	}
	size, err := strconv.ParseInt(hd.Get("Content-Length"), 10, 64)
	if c.rng == "" || c.req.Method != http.MethodGet || err != nil {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	if ir := c.req.Header.Get("If-Range"); ir != "" && ir != etag {
		c.ResponseWriter.WriteHeader(code) // changed since: the whole body
		return
	}
	start, end, ok, satisfiable := parseRange(c.rng, size)
	switch {
	case !ok: // several ranges, or not bytes: the whole body is a valid answer
		c.ResponseWriter.WriteHeader(code)
	case !satisfiable:
		hd.Del("Content-Type")
		hd.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		hd.Set("Content-Length", "0")
		c.mode = modeDiscard
		c.ResponseWriter.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
	default:
		c.mode, c.start, c.end = modeRange, start, end
		hd.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
		hd.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
		c.ResponseWriter.WriteHeader(http.StatusPartialContent)
	}
}

func (c *condWriter) Write(p []byte) (int, error) {
	if c.mode == modeUndecided {
		c.WriteHeader(http.StatusOK)
	}
	switch c.mode {
	case modeDiscard:
		return 0, errStop
	case modePass:
		return c.ResponseWriter.Write(p)
	}
	n := len(p)
	lo, hi := c.pos, c.pos+int64(n) // p covers [lo, hi)
	c.pos = hi
	from, to := max(lo, c.start), min(hi, c.end+1)
	if from >= to {
		return n, nil // outside the range: read for the digest, not sent
	}
	chunk := p[from-lo : to-lo]
	if to == c.end+1 { // holds the range's last byte: keep it back
		c.held = append(c.held[:0], chunk[len(chunk)-1])
		chunk = chunk[:len(chunk)-1]
	}
	if len(chunk) > 0 {
		if _, err := c.ResponseWriter.Write(chunk); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// finish sends the held byte once the handler has returned normally.
func (c *condWriter) finish() {
	if c.mode == modeRange && len(c.held) > 0 {
		_, _ = c.ResponseWriter.Write(c.held)
	}
}

// etagMatch is If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	etag = strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// parseRange reads one "bytes=" range against size. ok is false for a
// header the server may ignore (another unit, several ranges, bad syntax).
func parseRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if a == "" { // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(size-n, 0), size - 1, true, true
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false, false
	}
	e := size - 1
	if b != "" {
		if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
			return 0, 0, false, false
		}
		e = min(e, size-1)
	}
	if s >= size {
		return 0, 0, true, false
	}
	return s, e, true, true
}

// accessLog logs every request once it is answered (or aborted): method,
// path (never the query, which holds the link's signature), status, bytes
// and duration.
func accessLog(logger *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &logWriter{ResponseWriter: w}
		status := func() int {
			if lw.status == 0 {
				return http.StatusOK
			}
			return lw.status
		}
		defer func() {
			attrs := []any{"method", r.Method, "path", r.URL.Path, "bytes", lw.bytes,
				"duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr}
			if v := recover(); v != nil {
				logger.Warn("request aborted", append(attrs, "status", status())...)
				panic(v)
			}
			logger.Info("request", append(attrs, "status", status())...)
		}()
		h.ServeHTTP(lw, r)
	})
}

type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (l *logWriter) WriteHeader(code int) {
	if l.status == 0 {
		l.status = code
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(p []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	n, err := l.ResponseWriter.Write(p)
	l.bytes += int64(n)
	return n, err
}

// ReadFrom hands a body to the wrapped writer's own ReadFrom, so that a
// stash served from a file still goes out by sendfile, not through a
// buffer of this process's.
func (l *logWriter) ReadFrom(r io.Reader) (int64, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	n, err := io.Copy(l.ResponseWriter, r) // the wrapped writer's ReadFrom, if it has one
	l.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer
// (flushing, full duplex for batch requests).
func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// Flush forwards to the wrapped writer, for code that asserts http.Flusher.
func (l *logWriter) Flush() { _ = http.NewResponseController(l.ResponseWriter).Flush() }
