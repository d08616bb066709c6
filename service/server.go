package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Defaults and limits, in one place.
const (
	// DefaultMaxBodySize bounds a PUT or POST body (WithMaxBodySize).
	DefaultMaxBodySize = 5 << 30
	// DefaultStallTimeout is how long a request's body may bring nothing,
	// or a response wait on a client that takes nothing, before the
	// server gives up on the request (WithStallTimeout).
	DefaultStallTimeout = time.Minute
	// DefaultMaxHeaderBytes bounds a request's headers (http.Server's
	// MaxHeaderBytes; see NewHTTPServer).
	DefaultMaxHeaderBytes = 64 << 10
	// MaxMetadata bounds how many x-snme- headers an object may carry.
	MaxMetadata = 64
	// MaxBatchOperations and MaxBatchInsert bound a batch request.
	MaxBatchOperations = 1000
	MaxBatchInsert     = 1 << 20
	// DefaultContentType is what an object without Content-Type is served as.
	DefaultContentType = "application/octet-stream"
)

// Header names, lowercase as they go out on the wire.
const (
	HeaderContentType        = "content-type"
	HeaderContentEncoding    = "content-encoding"
	HeaderContentDisposition = "content-disposition"
	HeaderExpiration         = "x-sn-expiration"
	HeaderTimeCreated        = "x-sn-time-created"
	HeaderTimeExpires        = "x-sn-time-expires"
	HeaderOrigin             = "x-sn-origin"
	HeaderFilename           = "x-sn-filename"
	HeaderSize               = "x-sn-size"
	HeaderMetaPrefix         = "x-snme-"
	// MetaDecodedSize is the custom metadata key claimstash's backend sends
	// with a zstd body: the decoded size, which the server records as the
	// object's size so an Engine over the same storage can bound decoding.
	MetaDecodedSize = "claimstash-size"

	// HeaderDecodedSize goes out with a zstd object whose decoded size
	// the server knows: sent as MetaDecodedSize by claimstash's backend,
	// or counted as the body was stored (objectstore's clients send
	// none). It is no x-snme- header, so that objectstore's clients do
	// not see metadata they never wrote.
	HeaderDecodedSize = "x-claimstash-decoded-size"

	// HeaderConditionalPut goes out with every object response of this
	// server, with the value ConditionalPutIfNoneMatch: a PUT carrying
	// If-None-Match: * is answered 412 when the key holds an object, and
	// stores nothing. A client that sees it may write without asking
	// first whether the key is free. objectstore's own server ignores the
	// condition and sends no such header.
	HeaderConditionalPut      = "x-claimstash-conditional-put"
	ConditionalPutIfNoneMatch = "if-none-match"

	// metaFilename is where the filename is kept among the attributes'
	// metadata: a colon can never be in a header name, so no x-snme- key
	// can collide with it.
	metaFilename = "sn:filename"
	timeFormat   = "2006-01-02T15:04:05.000000Z07:00"
)

// Server is objectstore's v1 HTTP API over a stash driver: an http.Handler.
// Make it with New.
type Server struct {
	d        driver.Driver
	auth     *osauth.Verifier
	maxBody  int64
	maxScope int
	stall    time.Duration
	tempDir  string
	now      func() time.Time
	log      *slog.Logger
	noAuth   bool
	draining atomic.Bool
}

// An Option configures a Server.
type Option interface{ apply(*Server) }

type option func(*Server)

func (f option) apply(s *Server) { f(s) }

// WithAuth makes the server check every object request's token or
// presigned signature with v. A Server needs WithAuth or WithoutAuth.
func WithAuth(v *osauth.Verifier) Option { return option(func(s *Server) { s.auth = v }) }

// WithoutAuth serves every request unauthenticated: for local demos only.
func WithoutAuth() Option { return option(func(s *Server) { s.noAuth = true }) }

// WithMaxBodySize bounds PUT and POST bodies (DefaultMaxBodySize).
func WithMaxBodySize(n int64) Option { return option(func(s *Server) { s.maxBody = n }) }

// WithStallTimeout sets how long a request's body may bring no byte, or a
// response wait on a client that takes none (at least 1 MiB each time),
// before the server gives up on the request and closes its connection
// (DefaultStallTimeout; negative: never).
func WithStallTimeout(d time.Duration) Option { return option(func(s *Server) { s.stall = d }) }

// WithMaxScopes bounds the scopes of a path (DefaultMaxScopes).
func WithMaxScopes(n int) Option { return option(func(s *Server) { s.maxScope = n }) }

// WithTempDir is where bodies without a Content-Length are spooled before
// they are stored (os.TempDir()).
func WithTempDir(dir string) Option { return option(func(s *Server) { s.tempDir = dir }) }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return option(func(s *Server) { s.now = now }) }

// WithLogger sets the logger for failures the server cannot answer with
// (slog.Default()).
func WithLogger(l *slog.Logger) Option { return option(func(s *Server) { s.log = l }) }

// ErrNoAuth is returned by New without WithAuth or WithoutAuth.
var ErrNoAuth = errors.New("service: authentication is not configured (give keys, or disable it explicitly)")

// New makes a Server storing objects in d. Auth is required: pass WithAuth,
// or WithoutAuth to serve unauthenticated.
func New(d driver.Driver, opts ...Option) (*Server, error) {
	if d == nil {
		return nil, errors.New("service: no driver")
	}
	s := &Server{d: d, maxBody: DefaultMaxBodySize, maxScope: DefaultMaxScopes, stall: DefaultStallTimeout, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(s)
	}
	switch {
	case s.auth == nil && !s.noAuth:
		return nil, ErrNoAuth
	case s.auth != nil && s.noAuth:
		return nil, errors.New("service: both keys and no authentication given")
	}
	if s.maxScope <= 0 {
		s.maxScope = DefaultMaxScopes
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodySize
	}
	if s.stall == 0 {
		s.stall = DefaultStallTimeout
	}
	return s, nil
}

// Drain marks the server as shutting down: /ready answers 503 from now on,
// so load balancers stop sending requests, while requests keep being served.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// ServeHTTP implements http.Handler: /health, /ready, /v1/objects/… and
// /v1/objects:batch/… and objectstore's multipart uploads
// (/v1/objects:multipart…/…); anything else is 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case path == "/health":
		writeText(w, http.StatusOK, "OK")
	case path == "/ready":
		if s.Draining() {
			writeText(w, http.StatusServiceUnavailable, "Shutting down")
			return
		}
		writeText(w, http.StatusOK, "OK")
	case s.d == nil && (strings.HasPrefix(path, "/v1/objects/") || strings.HasPrefix(path, "/v1/objects:")):
		// A Server that New did not build: nothing to serve from, and no
		// keys to check tokens with.
		writeError(w, http.StatusInternalServerError, errors.New("the server has no storage configured"))
	case strings.HasPrefix(path, "/v1/objects/"):
		w, r, done := guard(w, r, s.stall)
		defer done()
		s.object(w, r, path[len("/v1/objects/"):])
	case strings.HasPrefix(path, "/v1/objects:batch/"):
		w, r, done := guard(w, r, s.stall)
		defer done()
		s.batch(w, r, path[len("/v1/objects:batch/"):])
	default:
		if rt := multipartRoute(path); rt != "" {
			w, r, done := guard(w, r, s.stall)
			defer done()
			s.multipart(w, r, rt, path[len(rt):])
			return
		}
		writeError(w, http.StatusNotFound, errors.New("no such route"))
	}
}

// apiError carries the status an error is answered with.
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func status(code int, format string, args ...any) error {
	return &apiError{code, fmt.Errorf(format, args...)}
}

// statusOf maps an error to the status it is answered with.
func statusOf(err error) int {
	var ae *apiError
	switch {
	case errors.Is(err, errStalled):
		return http.StatusRequestTimeout
	case errors.As(err, &ae):
		return ae.status
	case errors.Is(err, osauth.ErrMissing):
		return http.StatusBadRequest
	case errors.Is(err, osauth.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, osauth.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, driver.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, driver.ErrInvalidAddress):
		return http.StatusBadRequest
	case errors.Is(err, driver.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, driver.ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is objectstore's JSON error: the message and its causes, left
// out when there are none (as objectstore does).
type errorBody struct {
	Detail string   `json:"detail"`
	Causes []string `json:"causes,omitempty"`
}

func errorJSON(err error) errorBody {
	b := errorBody{Detail: err.Error()}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if _, ok := e.(*apiError); ok || e.Error() == b.Detail {
			continue // the detail itself, not a cause of it
		}
		b.Causes = append(b.Causes, e.Error())
	}
	return b
}

// internalError is what a client is told of a server-side failure.
func internalError(code int) error {
	return &apiError{code, fmt.Errorf("service: %s (the server's log has the cause)", strings.ToLower(http.StatusText(code)))}
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorJSON(err))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h[HeaderContentType] = []string{"application/json"}
	h["Content-Type"] = nil
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.log.Error("service: request failed", "method", r.Method, "path", r.URL.EscapedPath(), "err", err)
		err = internalError(code) // the cause, with its file paths, stays in the log
	}
	// objectstore answers a missing object without a body.
	if r.Method == http.MethodHead || code == http.StatusNotFound && (r.Method == http.MethodGet || r.Method == http.MethodPatch) {
		w.WriteHeader(code)
		return
	}
	writeError(w, code, err)
}

func (s *Server) authorize(r *http.Request, p ObjectPath, perm osauth.Permission) error {
	if s.noAuth {
		return nil
	}
	if s.auth == nil { // never past New: fail closed, not open
		return status(http.StatusInternalServerError, "the server has no keys to check tokens with")
	}
	return s.auth.Authorize(r, osauth.Request{Usecase: p.Usecase, Scopes: p.Scopes, Permission: perm})
}

// advertise sets HeaderConditionalPut.
func advertise(h http.Header) {
	h[HeaderConditionalPut] = []string{ConditionalPutIfNoneMatch}
}

func (s *Server) object(w http.ResponseWriter, r *http.Request, rest string) {
	advertise(w.Header())
	p, err := parseObjectPath(rest, s.maxScope)
	if err != nil {
		s.fail(w, r, &apiError{http.StatusBadRequest, err})
		return
	}
	var perm osauth.Permission
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		perm = osauth.Read
	case http.MethodPut, http.MethodPost, http.MethodPatch:
		perm = osauth.Write
	case http.MethodDelete:
		perm = osauth.Delete
	default:
		w.Header().Set("Allow", allowedMethods)
		s.fail(w, r, status(http.StatusMethodNotAllowed, "method %s not allowed", r.Method))
		return
	}
	if (p.Key == "") != (r.Method == http.MethodPost) {
		if r.Method == http.MethodPost {
			s.fail(w, r, status(http.StatusBadRequest, "POST makes its own key: leave it out of the path, or PUT"))
		} else {
			s.fail(w, r, status(http.StatusBadRequest, "no key in the path"))
		}
		return
	}
	if err := s.authorize(r, p, perm); err != nil {
		s.fail(w, r, err)
		return
	}
	if resumable(r.URL.RawQuery) {
		// objectstore's resumable uploads: not served here. 501 is what
		// its clients take as "fall back to a plain PUT"; answered as a
		// plain request, the empty creation PUT would store an empty
		// object over the one under the key, a chunk would become the
		// whole object, and a cancel would delete it.
		writeError(w, http.StatusNotImplemented, errNoResumable) // not a failure to log
		return
	}
	switch r.Method {
	case http.MethodGet:
		err = s.get(w, r, p)
	case http.MethodHead:
		err = s.head(w, r, p)
	case http.MethodPut:
		err = s.put(w, r, p, http.StatusOK)
	case http.MethodPost:
		p.Key = uuid.NewString()
		err = s.put(w, r, p, http.StatusCreated)
	case http.MethodPatch:
		err = s.patch(w, r, p)
	case http.MethodDelete:
		err = s.delete(r.Context(), p)
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
		}
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

// Query parameters of objectstore's resumable uploads.
const (
	queryUploadType = "upload_type"
	querySession    = "session"
)

// resumable reports whether a query belongs to a resumable upload. Most
// object requests have no query: they pay nothing for the check.
func resumable(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	q, _ := url.ParseQuery(rawQuery)
	return q.Has(queryUploadType) || q.Has(querySession)
}

var errNoResumable = status(http.StatusNotImplemented, "resumable uploads are not supported: send the object in one PUT")

// meta is an object's metadata as the request headers give it.
type meta struct {
	contentType string
	encoding    driver.Encoding
	exp         Expiration
	origin      string
	filename    string
	custom      map[string]string
	decodedSize int64 // -1: not given
}

func parseMeta(h http.Header) (*meta, error) {
	m := &meta{contentType: DefaultContentType, decodedSize: -1}
	if ct := h.Get(HeaderContentType); ct != "" {
		m.contentType = ct
	}
	switch ce := strings.ToLower(strings.TrimSpace(h.Get(HeaderContentEncoding))); ce {
	case "", "identity":
	case "zstd":
		m.encoding = driver.EncodingZstd
	case "gzip":
		// objectstore's Rust client compresses with it on request; the
		// object is stored and served as sent, labelled.
		m.encoding = driver.EncodingGzip
	default:
		return nil, status(http.StatusBadRequest, "content-encoding %q: only zstd and gzip are accepted", clip(ce))
	}
	if v := h.Get(HeaderExpiration); v != "" {
		e, err := ParseExpiration(v)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, err}
		}
		m.exp = e
	}
	var err error
	if m.origin, err = decodeHeaderValue(h.Get(HeaderOrigin)); err != nil {
		return nil, err
	}
	if m.filename, err = decodeHeaderValue(h.Get(HeaderFilename)); err != nil {
		return nil, err
	}
	for name, vs := range h {
		lname := strings.ToLower(name)
		k, ok := strings.CutPrefix(lname, HeaderMetaPrefix)
		if !ok {
			continue
		}
		if k == "" {
			return nil, status(http.StatusBadRequest, "metadata header without a key")
		}
		if len(vs) != 1 {
			return nil, status(http.StatusBadRequest, "metadata %q given %d times", clip(k), len(vs))
		}
		v, err := decodeHeaderValue(vs[0])
		if err != nil {
			return nil, err
		}
		// The decoded size of a zstd body; of a body stored as sent it
		// means nothing to the server, and is metadata like any other.
		if k == MetaDecodedSize && m.encoding == driver.EncodingZstd {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, status(http.StatusBadRequest, "metadata %s %q: want a size", MetaDecodedSize, clip(v))
			}
			m.decodedSize = n
			continue
		}
		if m.custom == nil {
			m.custom = map[string]string{}
		}
		m.custom[k] = v
	}
	if len(m.custom) > MaxMetadata {
		return nil, status(http.StatusRequestHeaderFieldsTooLarge, "%d metadata headers: at most %d", len(m.custom), MaxMetadata)
	}
	return m, nil
}

func (m *meta) attrs(now time.Time, key string, stored int64) *driver.Attributes {
	a := &driver.Attributes{
		StoredSize:  stored,
		Size:        stored,
		Encoding:    m.encoding,
		Digest:      digestOf(key),
		ContentType: m.contentType,
		Origin:      m.origin,
		Created:     now,
		LastAccess:  now,
		TTI:         m.exp.TTI,
	}
	if m.encoding != driver.EncodingIdentity {
		a.Size = max(m.decodedSize, 0) // 0: unknown (a gzip body's)
	}
	if m.exp.TTL > 0 {
		a.ExpiresAt = now.Add(m.exp.TTL)
	}
	if len(m.custom) > 0 || m.filename != "" {
		a.Metadata = make(map[string]string, len(m.custom)+1)
		for k, v := range m.custom {
			a.Metadata[k] = v
		}
		if m.filename != "" {
			a.Metadata[metaFilename] = m.filename
		}
	}
	return a
}

// put stores the request body. A body with a Content-Length for a new key
// streams straight into the driver. One without a length is spooled to a
// temporary file first (drivers want the size up front), and so is one that
// replaces an object, so that an upload cut short leaves the old object in
// place. Either way at most a copy buffer is in memory.
//
// With If-None-Match: * a PUT only creates: when the key holds an object,
// or another PUT stores one first, it is 412 and nothing is stored (a
// body of up to 1 MiB is read and dropped, to keep the connection; a
// larger one is not read). That check is the driver's own (a driver never
// replaces an object on Put), so it holds against concurrent PUTs.
func (s *Server) put(w http.ResponseWriter, r *http.Request, p ObjectPath, code int) error {
	m, err := parseMeta(r.Header)
	if err != nil {
		return err
	}
	createOnly := r.Method == http.MethodPut && strings.TrimSpace(r.Header.Get("If-None-Match")) == "*"
	ns, key := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
	a, err := s.d.Stat(r.Context(), ns, key)
	exists := err == nil
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	if exists && a.Expired(s.now().UTC()) {
		// Gone for every reader, so gone for this writer too: a
		// create-only PUT refused here would leave its client holding a
		// key that serves nothing.
		if err := s.dropExpired(r.Context(), ns, key); err != nil {
			return err
		}
		exists = false
	}
	if exists && createOnly {
		// A client sends the body whatever the answer: one of up to
		// refusedBodyMax is read and dropped, so that its connection is
		// kept for the next request (net/http closes one whose unread
		// body is 256 KiB or more). A larger one is not read, nor one a
		// client waits to send until asked (Expect: 100-continue).
		if r.ContentLength > 0 && r.ContentLength <= refusedBodyMax && r.Header.Get("Expect") == "" {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, refusedBodyMax))
		}
		return errPreconditionFailed
	}
	// A zstd body without its decoded size (objectstore's own clients
	// send none) is counted as it is spooled, so that the object records
	// the size an Engine reading it must decode to.
	count := m.encoding == driver.EncodingZstd && m.decodedSize < 0
	body, size, decoded, cleanup, err := s.sizedBody(r, exists || count, count)
	if err != nil {
		return err
	}
	if count {
		m.decodedSize = decoded
	}
	defer cleanup()
	if err := s.store(r.Context(), p, m, body, size, exists); err != nil {
		if createOnly && errors.Is(err, driver.ErrExists) {
			return errPreconditionFailed
		}
		if !errors.Is(err, driver.ErrExists) {
			return err
		}
	}
	writeJSON(w, code, map[string]string{"key": p.Key})
	return nil
}

// dropExpired deletes the expired object under key, only if it is still
// expired where the driver can check that as it deletes
// (driver.ConditionalDeleter): a PUT that stored a fresh object meanwhile
// keeps it, and this PUT then finds the key taken when it stores.
func (s *Server) dropExpired(ctx context.Context, ns, key string) error {
	var err error
	if cd, ok := s.d.(driver.ConditionalDeleter); ok {
		_, err = cd.DeleteIf(ctx, ns, key, func(a *driver.Attributes) bool { return a.Expired(s.now().UTC()) })
	} else {
		err = s.d.Delete(ctx, ns, key)
	}
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// refusedBodyMax is the largest body of a refused create-only PUT that is
// read (and dropped) to keep the connection: the largest an Engine sends
// without asking first whether the content is there (see
// driver.ExclusivePutter).
const refusedBodyMax = 1 << 20

// errPreconditionFailed answers a create-only PUT of a key that holds an
// object.
var errPreconditionFailed = status(http.StatusPreconditionFailed, "an object exists under this key (If-None-Match: *)")

// store writes an object, replacing the object under its key when replace
// is set (it is deleted first: drivers never overwrite, so a reader may see
// a 404 in between). driver.ErrExists means a concurrent PUT of the same
// key stored its object first.
func (s *Server) store(ctx context.Context, p ObjectPath, m *meta, body io.Reader, size int64, replace bool) error {
	ns, key := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
	if replace {
		if err := s.d.Delete(ctx, ns, key); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return err
		}
	}
	err := s.d.Put(ctx, ns, key, body, size, m.attrs(s.now().UTC(), p.Key, size))
	switch {
	case errors.Is(err, driver.ErrExists):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{http.StatusBadRequest, fmt.Errorf("body shorter than its length: %w", err)}
	}
	return err
}

// sizedBody returns the request body and its size: the body itself when
// it has a Content-Length and spool is not set, else a spooled copy. With
// count (which needs spool), the spooled bytes are also decoded as zstd on
// the way, to count them: decoded is what they decode to, or -1 (see
// countDecoded).
func (s *Server) sizedBody(r *http.Request, spool, count bool) (body io.Reader, size, decoded int64, cleanup func(), err error) {
	if r.ContentLength > s.maxBody {
		return nil, 0, 0, nil, status(http.StatusRequestEntityTooLarge, "body of %d bytes: at most %d", r.ContentLength, s.maxBody)
	}
	if r.ContentLength >= 0 && !spool {
		return r.Body, r.ContentLength, -1, func() {}, nil
	}
	f, n, decoded, cleanup, err := s.spoolTo(io.LimitReader(r.Body, s.maxBody+1), count)
	if rf, ok := errors.AsType[*readFailure](err); ok {
		return nil, 0, 0, nil, status(http.StatusBadRequest, "reading body: %w", rf.err)
	}
	if err != nil {
		return nil, 0, 0, nil, err
	}
	if n > s.maxBody {
		cleanup()
		return nil, 0, 0, nil, status(http.StatusRequestEntityTooLarge, "body over %d bytes", s.maxBody)
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		cleanup()
		return nil, 0, 0, nil, status(http.StatusBadRequest, "body of %d bytes, Content-Length says %d", n, r.ContentLength)
	}
	return f, n, decoded, cleanup, nil
}

// readFailure is a failure to read what is being spooled, as opposed to
// a failure of the spool itself.
type readFailure struct{ err error }

func (e *readFailure) Error() string { return e.err.Error() }
func (e *readFailure) Unwrap() error { return e.err }

// spoolTo copies src to a temporary file, and returns it read from the
// start, its size and what removes it. With count the bytes are decoded
// as zstd on the way: decoded is what they decode to, or -1 (see
// countDecoded). An error reading src is a *readFailure.
func (s *Server) spoolTo(src io.Reader, count bool) (f *os.File, n, decoded int64, cleanup func(), err error) {
	f, err = os.CreateTemp(s.tempDir, "claimstash-spool-*")
	if err != nil {
		return nil, 0, 0, nil, err
	}
	cleanup = func() { f.Close(); os.Remove(f.Name()) }
	fail := func(err error) (*os.File, int64, int64, func(), error) {
		cleanup()
		return nil, 0, 0, nil, err
	}
	var rerr error
	src = readErr{src, &rerr}
	decoded = -1
	if count {
		// What the decoder reads goes to the spool; the rest (past a
		// frame it cannot decode, or past the count's bound) follows.
		spool := &writeErr{w: f}
		decoded = countDecoded(io.TeeReader(src, spool))
		switch {
		case spool.err != nil:
			// Bytes read but not spooled: never store what is left.
			return fail(fmt.Errorf("service: spooling the body: %w", spool.err))
		case rerr != nil:
			return fail(&readFailure{rerr})
		}
	}
	if _, err := io.Copy(f, src); err != nil {
		if rerr != nil {
			return fail(&readFailure{rerr})
		}
		return fail(fmt.Errorf("service: spooling the body: %w", err))
	}
	if n, err = f.Seek(0, io.SeekCurrent); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, n, decoded, cleanup, nil
}

// readErr remembers the error its reader returned other than io.EOF, so
// that a body that failed to arrive is told from zstd that fails to
// decode.
type readErr struct {
	r   io.Reader
	err *error
}

func (e readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && *e.err == nil {
		*e.err = err
	}
	return n, err
}

// writeErr remembers the first error its writer returned: a TeeReader
// hands it to its reader, here a zstd decoder that reports it as a frame
// it cannot decode.
type writeErr struct {
	w   io.Writer
	err error
}

func (e *writeErr) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// MaxCountedSize bounds how far the server decodes a zstd body it is not
// told the decoded size of, to count it: the engine's default size limit
// (stash.DefaultMaxSize). Bodies that decode to more are recorded without
// a decoded size, as are bodies that are not zstd.
const MaxCountedSize = stash.DefaultMaxSize

// countWindow is the largest zstd window countDecoded decodes with: the
// engine's own bound (it refuses frames that ask for more), which also
// bounds the memory a hostile frame can make a PUT hold.
const countWindow = 8 << 20

// countDecoded reads zstd frames from r, decoding them into nothing, and
// returns how many bytes they decode to: -1 when they do not decode (or
// need a window over countWindow), or decode to more than MaxCountedSize.
// It reads r only as far as the decoder needs.
func countDecoded(r io.Reader) int64 {
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(countWindow))
	if err != nil {
		return -1
	}
	defer dec.Close()
	n, err := io.CopyN(io.Discard, dec, MaxCountedSize+1)
	if err != io.EOF || n > MaxCountedSize {
		return -1
	}
	return n
}

func (s *Server) delete(ctx context.Context, p ObjectPath) error {
	err := s.d.Delete(ctx, storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key))
	if errors.Is(err, driver.ErrNotFound) {
		return nil
	}
	return err
}

// notFound is a 404 without detail.
var notFound = &apiError{http.StatusNotFound, errors.New("object not found")}

// live checks expiry and records the access for time-to-idle. It returns
// the expiry to report: the one before this access.
func (s *Server) live(ctx context.Context, ns, key string, a *driver.Attributes) (time.Time, error) {
	now := s.now().UTC()
	if a.Expired(now) {
		return time.Time{}, notFound
	}
	expires := expiryOf(a)
	if a.TTI > 0 {
		if bumpDue(a, now) {
			// A read-modify-write of what is stored now (atomic where
			// the driver is a driver.Modifier), so that a concurrent
			// expiry extension is never undone by this read.
			err := s.modify(ctx, ns, key, func(cur *driver.Attributes) *driver.Attributes {
				if cur.TTI <= 0 || !bumpDue(cur, now) {
					return nil
				}
				b := *cur
				b.LastAccess = now
				return &b
			})
			if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrUnsupported) {
				s.log.Warn("service: recording a read for time-to-idle", "namespace", ns, "key", key, "err", err)
			}
		}
	}
	return expires, nil
}

// bumpDue reports whether a read at now records its access: at most once
// per min(tti/4, 24 h) since the last one.
func bumpDue(a *driver.Attributes, now time.Time) bool {
	last := a.LastAccess
	if last.IsZero() {
		last = a.Created
	}
	return now.Sub(last) >= min(a.TTI/4, 24*time.Hour)
}

func expiryOf(a *driver.Attributes) time.Time {
	exp := a.ExpiresAt
	if a.TTI > 0 {
		last := a.LastAccess
		if last.IsZero() {
			last = a.Created
		}
		if idle := last.Add(a.TTI); exp.IsZero() || idle.Before(exp) {
			exp = idle
		}
	}
	return exp
}

// setMeta writes an object's metadata headers, lowercase; disposition
// adds the Content-Disposition objectstore serves GET and HEAD with.
func setMeta(h http.Header, a *driver.Attributes, expires time.Time, disposition bool) {
	ct := a.ContentType
	if ct == "" {
		ct = DefaultContentType
	}
	h[HeaderContentType] = []string{ct}
	h["Content-Type"] = nil // net/http would sniff one beside ours
	if a.Encoding != driver.EncodingIdentity {
		h[HeaderContentEncoding] = []string{string(a.Encoding)}
		if a.Encoding == driver.EncodingZstd && a.Size > 0 {
			n := []string{strconv.FormatInt(a.Size, 10)}
			h[HeaderDecodedSize] = n
			if _, ours := a.Metadata[MetaAttributes]; ours {
				// Written by claimstash's backend, which sent it as
				// metadata: it reads it back there too.
				h[HeaderMetaPrefix+MetaDecodedSize] = n
			}
		}
	}
	exp := Expiration{TTI: a.TTI}
	if a.TTI == 0 && !a.ExpiresAt.IsZero() {
		exp.TTL = a.ExpiresAt.Sub(a.Created)
	}
	if exp.TTL > 0 || exp.TTI > 0 {
		h[HeaderExpiration] = []string{exp.String()}
	}
	if !a.Created.IsZero() {
		h[HeaderTimeCreated] = []string{a.Created.UTC().Format(timeFormat)}
	}
	if !expires.IsZero() {
		h[HeaderTimeExpires] = []string{expires.UTC().Format(timeFormat)}
	}
	if a.Origin != "" {
		h[HeaderOrigin] = []string{encodeHeaderValue(a.Origin)}
	}
	h[HeaderSize] = []string{strconv.FormatInt(a.StoredSize, 10)}
	for k, v := range a.Metadata {
		if k == metaFilename {
			h[HeaderFilename] = []string{encodeHeaderValue(v)}
			continue
		}
		h[HeaderMetaPrefix+k] = []string{encodeHeaderValue(v)}
	}
	if disposition {
		h[HeaderContentDisposition] = []string{contentDisposition(a.Metadata[metaFilename])}
	}
}

func (s *Server) head(w http.ResponseWriter, r *http.Request, p ObjectPath) error {
	ns, key := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
	a, err := s.d.Stat(r.Context(), ns, key)
	if err != nil {
		return err
	}
	expires, err := s.live(r.Context(), ns, key, a)
	if err != nil {
		return err
	}
	setMeta(w.Header(), a, expires, true)
	w.Header().Set("Accept-Ranges", "bytes")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, p ObjectPath) error {
	ns, key := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
	rc, a, err := s.d.Get(r.Context(), ns, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	expires, err := s.live(r.Context(), ns, key, a)
	if err != nil {
		return err
	}
	h := w.Header()
	setMeta(h, a, expires, true)
	h.Set("Accept-Ranges", "bytes")
	size := a.StoredSize
	start, n, code := int64(0), size, http.StatusOK
	// If-Range asks for the range only if the object is still the one its
	// validator names; this server gives no validator (no ETag, no
	// Last-Modified), so none can match, and the object is served whole,
	// as RFC 9110 wants (never a range of another version).
	if rh := r.Header.Get("Range"); rh != "" && r.Header.Get("If-Range") == "" {
		st, ln, ok, satisfiable, err := parseRange(rh, size)
		switch {
		case err != nil:
			resetHeader(h) // no metadata beside the error
			advertise(h)
			return err
		case ok && !satisfiable:
			unsatisfiable(w, size)
			return nil
		case ok:
			start, n, code = st, ln, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", st, st+ln-1, size))
		}
	}
	var body io.Reader = rc
	if start > 0 {
		if ra, ok := rc.(io.ReaderAt); ok {
			body = io.NewSectionReader(ra, start, n)
		} else if _, err := io.CopyN(io.Discard, rc, start); err != nil {
			return fmt.Errorf("service: skipping to the range: %w", err)
		}
	}
	if n < size {
		body = io.LimitReader(body, n)
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(code)
	if _, err := io.Copy(w, body); err != nil {
		// The status is out: all we can do is cut the response short,
		// which the client sees as a short body against Content-Length.
		s.log.Warn("service: response cut short", "namespace", ns, "key", key, "err", err)
	}
	return nil
}

// encodeHeaderValue percent-encodes what a header value cannot carry:
// everything but visible ASCII and space, and '%' itself.
func encodeHeaderValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 0x20 && c < 0x7f && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// decodeHeaderValue undoes the percent-encoding objectstore's clients
// give metadata values. As their decoders (Python's unquote, Rust's
// percent_decode) do, a '%' that starts no escape is itself ("100%"
// stays "100%"; it is sent back as "100%25"). The value must be UTF-8,
// as those clients decode it strictly: one that is not would break every
// later read of the object with a decoding error in the client.
func decodeHeaderValue(v string) (string, error) {
	if strings.Contains(v, "%") {
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '%' && i+2 < len(v) && unhex(v[i+1]) >= 0 && unhex(v[i+2]) >= 0 {
				b.WriteByte(byte(unhex(v[i+1])<<4 | unhex(v[i+2])))
				i += 2
				continue
			}
			b.WriteByte(v[i])
		}
		v = b.String()
	}
	if !utf8.ValidString(v) {
		return "", status(http.StatusBadRequest, "header value %q: not UTF-8 once percent-decoded", clip(v))
	}
	return v, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
