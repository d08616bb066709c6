package links

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// The handler's verification protocol. A client that sends "TE: trailers"
// (the engine's Fetcher does) is answered without Content-Length: the
// payload's size is in HeaderSize, and the response declares the trailer
// TrailerResult, which says, after the body, ResultVerified, or ResultFailed
// followed by the kind of failure: "integrity" (the stored bytes do not
// match their digest: permanent), "too-large", or "unavailable" (the
// backend failed: try again). A client that does not send it is answered
// with Content-Length, and a stash found bad mid-stream is cut short. A
// stash found bad before the status is sent is a 500 whose TrailerResult
// header (sent to every client) says ResultFailed and the kind.
const (
	HeaderSize     = "Claimstash-Size"
	TrailerResult  = "Claimstash-Result"
	ResultVerified = "verified"
	ResultFailed   = "failed: "
)

// NewHandler returns the http.Handler that serves handler links (those an
// HMAC signer makes) from e, checking each request with v first. Mount it
// where the signer's base URL says it is reachable, under any path prefix:
// the handler reads the address from the end of the path, so
// http.StripPrefix is not needed.
//
// It answers GET and HEAD only (405 otherwise). It checks the link before it
// touches a backend, so a refused request learns nothing about what is
// stored: 403 for a tampered or malformed link or an unknown key id, 410 for
// an expired link or stash, 404 for a missing stash. A good link is answered
// 200 with the payload streamed through e.Open, verified as it goes, with
// Content-Type, Content-Length (HeaderSize for a client that reads
// trailers) and the digest as ETag. If the stored bytes turn out not to
// match their digest mid-stream, the body never reaches its size: a client
// that sent "TE: trailers" reads ResultFailed+"integrity" in the
// TrailerResult trailer (the Fetcher maps it to stash.ErrIntegrity), any
// other sees the connection aborted, never a clean end. Error responses
// carry a status text and nothing else.
func NewHandler(e *stash.Engine, v driver.Verifier, opts ...HandlerOption) http.Handler {
	h := &handler{e: e, v: v, now: time.Now, logger: slog.Default()}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.applyHandler(h)
	}
	return h
}

type handler struct {
	e      *stash.Engine
	v      driver.Verifier
	now    func() time.Time
	logger *slog.Logger
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	addr, err := stash.LinkPathAddress(r.URL.Path)
	if err != nil {
		httpError(w, http.StatusForbidden) // no link names this path
		return
	}
	if err := h.v.VerifyURL(r.Method, r.URL, h.now()); err != nil {
		if errors.Is(err, stash.ErrExpired) {
			httpError(w, http.StatusGone)
		} else {
			httpError(w, http.StatusForbidden)
		}
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodHead {
		s, err := h.e.Stat(ctx, addr.String())
		if err != nil {
			h.fail(ctx, w, addr, err)
			return
		}
		setStashHeaders(w, s)
		w.WriteHeader(http.StatusOK)
		return
	}
	rd, err := h.e.Open(ctx, addr.String())
	if err != nil {
		h.fail(ctx, w, addr, err)
		return
	}
	defer rd.Close()
	st := rd.Stash()
	setStashHeaders(w, st)
	trailer := acceptsTrailers(r)
	if trailer {
		// The trailer needs a chunked body (HTTP/1.1): the size goes in
		// a header of its own instead of Content-Length.
		hd := w.Header()
		hd.Del("Content-Length")
		hd.Set(HeaderSize, strconv.FormatInt(st.Size, 10))
		hd.Set("Trailer", TrailerResult)
	}
	w.WriteHeader(http.StatusOK)
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	rerr, werr := copyVerified(w, rd, *bp)
	switch {
	case rerr != nil && trailer:
		// The stash failed mid-stream: the body ends short of its size
		// (its last byte is never sent) and the trailer says why.
		h.logger.ErrorContext(ctx, "links: serving stash failed", "address", addr.String(), "err", rerr)
		w.Header().Set(TrailerResult, ResultFailed+failureKind(rerr))
	case rerr != nil:
		// The status is sent and the client cannot read a trailer:
		// abort the connection; the body stays short of its
		// Content-Length and no client can take it for the payload.
		h.logger.ErrorContext(ctx, "links: serving stash failed", "address", addr.String(), "err", rerr)
		panic(http.ErrAbortHandler)
	case werr == nil && trailer:
		w.Header().Set(TrailerResult, ResultVerified)
	}
}

// acceptsTrailers reports whether the request's TE header lists
// "trailers": the client reads trailer fields (RFC 9110, 10.1.4).
func acceptsTrailers(r *http.Request) bool {
	for _, v := range r.Header.Values("TE") {
		for tok := range strings.SplitSeq(v, ",") {
			tok, _, _ = strings.Cut(tok, ";")
			if strings.EqualFold(strings.TrimSpace(tok), "trailers") {
				return true
			}
		}
	}
	return false
}

// failureKind is what TrailerResult says of a stash that failed
// mid-stream.
func failureKind(err error) string {
	switch {
	case errors.Is(err, stash.ErrIntegrity):
		return kindIntegrity
	case errors.Is(err, stash.ErrTooLarge):
		return kindTooLarge
	}
	return kindUnavailable
}

const (
	kindIntegrity   = "integrity"
	kindTooLarge    = "too-large"
	kindUnavailable = "unavailable"
)

// copyVerified copies r to w, always holding back the last byte read until r
// ends cleanly: the Reader verifies the digest only at its end, so a body
// whose bytes do not verify is never sent whole. It returns the read error
// or the write error.
func copyVerified(w io.Writer, r io.Reader, buf []byte) (readErr, writeErr error) {
	held := false // buf[0] holds the last byte of the previous read
	for {
		n, err := r.Read(buf[1:])
		if n > 0 {
			start := 1
			if held {
				start = 0
			}
			if start < n {
				if _, werr := w.Write(buf[start:n]); werr != nil {
					return nil, werr
				}
			}
			buf[0], held = buf[n], true
		}
		switch {
		case err == io.EOF:
			if held {
				if _, werr := w.Write(buf[:1]); werr != nil {
					return nil, werr
				}
			}
			return nil, nil
		case err != nil:
			return err, nil
		}
	}
}

const defaultContentType = "application/octet-stream"

func setStashHeaders(w http.ResponseWriter, s *stash.Stash) {
	hd := w.Header()
	ct := s.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	hd.Set("Content-Type", ct)
	hd.Set("Content-Length", strconv.FormatInt(s.Size, 10))
	hd.Set("ETag", `"`+s.Address.Digest+`"`)
	// The payload is someone's data, not a page of this origin.
	hd.Set("Content-Disposition", `attachment; filename="`+s.Address.Name+`"`)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Cache-Control", "private, no-store")
}

func (h *handler) fail(ctx context.Context, w http.ResponseWriter, addr stash.Address, err error) {
	switch {
	case errors.Is(err, stash.ErrExpired):
		httpError(w, http.StatusGone)
	case errors.Is(err, stash.ErrNotFound), errors.Is(err, stash.ErrInvalidAddress), errors.Is(err, stash.ErrUnsupported):
		httpError(w, http.StatusNotFound)
	case ctx.Err() != nil:
		// The client went away; there is no one to answer.
	default:
		h.logger.ErrorContext(ctx, "links: opening stash failed", "address", addr.String(), "err", err)
		if kind := failureKind(err); kind != kindUnavailable {
			// Not the server's passing trouble: the stash is bad, for
			// good. The Fetcher reads this as it reads the trailer.
			w.Header().Set(TrailerResult, ResultFailed+kind)
		}
		httpError(w, http.StatusInternalServerError)
	}
}

func httpError(w http.ResponseWriter, code int) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(code), code)
}
