package links

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// Options are of two kinds, so that one passed where it does not apply is a
// compile error: a FetcherOption configures NewFetcher, a HandlerOption
// NewHandler. An Option (WithClock) is both.
type (
	// FetcherOption configures NewFetcher.
	FetcherOption interface{ applyFetcher(*Fetcher) error }
	// HandlerOption configures NewHandler.
	HandlerOption interface{ applyHandler(*handler) }
	// Option configures both.
	Option interface {
		FetcherOption
		HandlerOption
	}
)

type fetcherOption func(*Fetcher) error

func (f fetcherOption) applyFetcher(x *Fetcher) error { return f(x) }

type handlerOption func(*handler)

func (f handlerOption) applyHandler(h *handler) { f(h) }

type clockOption func() time.Time

func (c clockOption) applyFetcher(f *Fetcher) error { f.now = c; return nil }
func (c clockOption) applyHandler(h *handler)       { h.now = c }

// WithClock replaces time.Now, for tests: the fetcher checks expiries by
// it, the handler verifies links by it.
func WithClock(now func() time.Time) Option { return clockOption(now) }

// Fetcher fetches share links for an engine (stash.WithLinkFetcher). It
// holds the process's one list of trusted origins: a link from anywhere
// else is stash.ErrForbidden before any request, and redirects are followed
// only to trusted origins. It uses its own HTTP client (by default one with
// connection, TLS-handshake and response-header timeouts but no overall
// timeout, so large payloads can stream), never a package-level transport;
// whatever the client, a body that sends nothing for the stall timeout
// (WithStallTimeout) fails the read.
type Fetcher struct {
	origins   map[string]bool // "scheme://host[:port]"
	client    *http.Client
	verifiers map[string]*HMAC // by origin: links verified before any request
	now       func() time.Time
	stall     time.Duration // longest wait for a response's next bytes; <= 0: none
}

// DefaultStallTimeout is how long, by default, a fetch waits for the next
// bytes of a response body before it fails (WithStallTimeout).
const DefaultStallTimeout = 30 * time.Second

var _ stash.LinkFetcher = (*Fetcher)(nil)

// NewFetcher returns a fetcher that trusts no origin but those its options
// name.
func NewFetcher(opts ...FetcherOption) (*Fetcher, error) {
	f := &Fetcher{origins: map[string]bool{}, verifiers: map[string]*HMAC{}, now: time.Now, stall: DefaultStallTimeout}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		if err := o.applyFetcher(f); err != nil {
			return nil, err
		}
	}
	var hc http.Client
	if f.client != nil {
		hc = *f.client
	} else {
		hc.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return forbidden("too many redirects")
		}
		if !f.origins[origin(req.URL)] {
			return forbidden("redirect to untrusted origin %s", origin(req.URL))
		}
		return nil
	}
	f.client = &hc
	return f, nil
}

// TrustOrigins makes the fetcher fetch links from these origins
// ("https://host[:port]"). Addresses arrive in messages and are untrusted,
// so by default no origin is.
func TrustOrigins(origins ...string) FetcherOption {
	return fetcherOption(func(f *Fetcher) error {
		for _, o := range origins {
			u, err := parseOrigin(o, false)
			if err != nil {
				return fmt.Errorf("links: TrustOrigins: %w", err)
			}
			f.origins[origin(u)] = true
		}
		return nil
	})
}

// VerifyWith trusts the origin of h's base URL and checks the links under
// it with h before any request, so a tampered or expired link this process
// signed is refused locally.
func VerifyWith(h *HMAC) FetcherOption {
	return fetcherOption(func(f *Fetcher) error {
		if h == nil || h.base == nil {
			return errors.New("links: VerifyWith: a signer with a base URL")
		}
		f.origins[h.Origin()] = true
		f.verifiers[h.Origin()] = h
		return nil
	})
}

// WithHTTPClient sets the client that fetches links. The fetcher uses a
// copy whose redirect policy allows trusted origins only.
func WithHTTPClient(c *http.Client) FetcherOption {
	return fetcherOption(func(f *Fetcher) error {
		if c == nil {
			return errors.New("links: WithHTTPClient: nil client")
		}
		f.client = c
		return nil
	})
}

// WithStallTimeout sets how long a fetch waits for the next bytes of a
// response body (DefaultStallTimeout; 0 or less: for ever, until the
// caller's context ends). A server that sends its headers and then stops
// (a dead peer behind a proxy, a slowloris) fails the read after d instead
// of holding the message's handler: a transient error, so the message is
// redelivered.
func WithStallTimeout(d time.Duration) FetcherOption {
	return fetcherOption(func(f *Fetcher) error { f.stall = d; return nil })
}

// Trusted implements stash.LinkFetcher: the origin must be trusted; a link
// under a VerifyWith signer's base URL must verify; and any link whose own
// expiry has passed (exp of a handler link, X-Amz-Date plus X-Amz-Expires of
// an S3 presigned URL, or Expires of one signed with signature version 2,
// os_timestamp plus os_duration of an objectstore one) is stash.ErrExpired.
func (f *Fetcher) Trusted(l *stash.Link) error {
	o := origin(l.URL)
	if !f.origins[o] {
		return forbidden("origin %s is not trusted", o)
	}
	now := f.now()
	if h := f.verifiers[o]; h != nil && !l.Presigned {
		return h.VerifyURL(http.MethodGet, l.URL, now)
	}
	q := l.URL.Query()
	var deadline time.Time
	if exp, err := strconv.ParseInt(q.Get(queryExpiry), 10, 64); err == nil && !l.Presigned {
		deadline = time.Unix(exp, 0)
	}
	if date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date")); err == nil {
		if secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64); err == nil {
			deadline = date.Add(seconds(secs))
		}
	}
	if q.Has("AWSAccessKeyId") && q.Has("Signature") {
		// Signature version 2 (boto3's default presigning, as kstash's
		// links are made): Expires is the moment, in Unix seconds.
		if exp, err := strconv.ParseInt(q.Get("Expires"), 10, 64); err == nil {
			deadline = time.Unix(exp, 0)
		}
	}
	if ts, err := time.Parse(time.RFC3339Nano, q.Get("os_timestamp")); err == nil {
		if secs, err := strconv.ParseInt(q.Get("os_duration"), 10, 64); err == nil {
			deadline = ts.Add(seconds(secs))
		}
	}
	if !deadline.IsZero() && !now.Before(deadline) {
		return fmt.Errorf("%w: share link expired", stash.ErrExpired)
	}
	return nil
}

// seconds is n seconds as a duration, capped where a Duration ends (a
// link's lifetime from its query, which a hostile link may make huge: an
// overflow would read as a deadline long past).
func seconds(n int64) time.Duration {
	const most = int64(math.MaxInt64 / int64(time.Second))
	return time.Duration(min(max(n, -most), most)) * time.Second
}

// Fetch implements stash.LinkFetcher.
func (f *Fetcher) Fetch(ctx context.Context, l *stash.Link) (*http.Response, error) {
	if err := f.Trusted(l); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("%w: share link: %v", stash.ErrInvalidAddress, err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	// This package's handler then says, in a trailer, whether the stash
	// it streamed verified; other servers ignore it.
	req.Header.Set("TE", "trailers")
	resp, err := f.client.Do(req)
	if err != nil {
		// The link's query is its signature (a presigned URL's,
		// credentials): a bearer secret, kept out of the message.
		var ue *url.Error
		if errors.As(err, &ue) {
			if i := strings.IndexAny(ue.URL, "?#"); i >= 0 {
				ue.URL = ue.URL[:i] + "?…"
			}
		}
		cancel(nil)
		return nil, fmt.Errorf("links: %w", err)
	}
	if err := statusError(resp); err != nil {
		drain(resp.Body)
		cancel(nil)
		return nil, err
	}
	resp.Body = newStallBody(resp.Body, f.stall, cancel)
	if _, ok := resp.Trailer[TrailerResult]; ok {
		// A handler that reads the stash as it sends it, and says at the
		// end whether it verified (see TrailerResult).
		if resp.ContentLength < 0 {
			if n, err := strconv.ParseInt(resp.Header.Get(HeaderSize), 10, 64); err == nil && n >= 0 {
				resp.ContentLength = n
			}
		}
		resp.Body = &resultBody{ReadCloser: resp.Body, trailer: resp.Trailer, size: resp.ContentLength}
	}
	return resp, nil
}

// errStalled is the cause of a fetch cancelled because its body sent
// nothing for the stall timeout.
var errStalled = errors.New("links: share link response stalled")

// stallBody is a response body whose every Read must return within the
// stall timeout: otherwise the request is cancelled and the Read fails. It
// ends the request's context when closed.
type stallBody struct {
	rc      io.ReadCloser
	timeout time.Duration
	cancel  context.CancelCauseFunc
	timer   *time.Timer
}

func newStallBody(rc io.ReadCloser, timeout time.Duration, cancel context.CancelCauseFunc) *stallBody {
	b := &stallBody{rc: rc, timeout: timeout, cancel: cancel}
	if timeout > 0 {
		b.timer = time.AfterFunc(timeout, func() { cancel(errStalled) })
		b.timer.Stop()
	}
	return b
}

func (b *stallBody) Read(p []byte) (int, error) {
	if b.timer == nil {
		return b.rc.Read(p)
	}
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	if !b.timer.Stop() && err != nil && err != io.EOF {
		return n, fmt.Errorf("links: share link response sent nothing for %s: %w", b.timeout, errStalled)
	}
	return n, err
}

func (b *stallBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// resultBody is the body of a response that declares TrailerResult: at its
// end it reports what the trailer says, so a stash the server found bad
// after its 200 is stash.ErrIntegrity (permanent), a server that failed
// otherwise is a transient read error, and one that says nothing is
// io.ErrUnexpectedEOF if the body is short. A body that ends whole ends
// with io.EOF whatever the trailer says: the engine verifies its bytes.
type resultBody struct {
	io.ReadCloser
	trailer http.Header // filled in by the client at the end of the body
	size    int64       // -1 if unknown
	n       int64
}

func (b *resultBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err != io.EOF {
		return n, err
	}
	return n, b.end()
}

func (b *resultBody) end() error {
	if b.size >= 0 && b.n >= b.size {
		return io.EOF
	}
	v := b.trailer.Get(TrailerResult)
	kind, failed := strings.CutPrefix(v, ResultFailed)
	switch {
	case failed && kind == kindIntegrity:
		return fmt.Errorf("%w: the share link's server found the stash does not match its digest", stash.ErrIntegrity)
	case failed && kind == kindTooLarge:
		return fmt.Errorf("%w: the share link's server found the stash over a limit", stash.ErrTooLarge)
	case failed:
		return fmt.Errorf("links: the share link's server failed while sending the stash (%s): %w", quoteCut(kind), io.ErrUnexpectedEOF)
	case v == ResultVerified:
		return io.EOF // short of the size: the engine finds it so
	case b.size >= 0:
		return fmt.Errorf("links: share link response ended after %d of %d bytes without saying why: %w", b.n, b.size, io.ErrUnexpectedEOF)
	}
	return io.EOF
}

// quoteCut quotes what a server said for an error message, cut to 40 bytes.
func quoteCut(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strconv.QuoteToASCII(s)
}

// drain reads a little of a refused response, so the connection can be
// reused, and closes it. Nothing read is ever returned.
func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 4<<10)
	_ = rc.Close()
}

// statusError maps a share-link response status onto the stash errors.
func statusError(resp *http.Response) error {
	if resp.StatusCode >= 500 {
		// This package's handler says in a header when a stash is bad
		// for good (see TrailerResult); otherwise the server's trouble
		// may pass.
		switch resp.Header.Get(TrailerResult) {
		case ResultFailed + kindIntegrity:
			return fmt.Errorf("%w: the share link's server found the stash bad (it answered %s)", stash.ErrIntegrity, resp.Status)
		case ResultFailed + kindTooLarge:
			return fmt.Errorf("%w: the share link's server found the stash over a limit (it answered %s)", stash.ErrTooLarge, resp.Status)
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusForbidden, http.StatusUnauthorized:
		return forbidden("server answered %s", resp.Status)
	case http.StatusGone:
		return fmt.Errorf("%w: server answered %s", stash.ErrExpired, resp.Status)
	case http.StatusNotFound:
		return fmt.Errorf("%w: server answered %s", stash.ErrNotFound, resp.Status)
	}
	return fmt.Errorf("links: server answered %s", resp.Status)
}

// WithLogger sets the handler's logger (slog.Default()): it logs what it
// cannot answer, a stash that fails mid-stream.
func WithLogger(l *slog.Logger) HandlerOption {
	return handlerOption(func(h *handler) {
		if l != nil {
			h.logger = l
		}
	})
}

// EngineOptions is the share-link setup of a process in one call, as the
// command line and package claimstash read it from CLAIMSTASH_LINK_KEYS,
// CLAIMSTASH_SHARE_URL and CLAIMSTASH_TRUSTED_ORIGINS: with keys, an HMAC
// signer whose links point under shareURL (the engine's link signer; pass
// it to NewHandler to serve them); a fetcher that trusts shareURL's origin
// (verifying the links it signed before any request) and the trusted
// origins. It returns the signer (nil without keys) and the engine options
// (none when all three are empty).
func EngineOptions(keys []Key, shareURL string, trusted ...string) (*HMAC, []stash.Option, error) {
	var signer *HMAC
	var opts []stash.Option
	var fopts []FetcherOption
	if len(keys) > 0 {
		h, err := NewHMAC(shareURL, keys...)
		if err != nil {
			return nil, nil, err
		}
		signer = h
		if shareURL != "" {
			opts = append(opts, stash.WithLinkSigner(h))
			fopts = append(fopts, VerifyWith(h))
		}
	} else if shareURL != "" {
		u, err := parseOrigin(shareURL, true)
		if err != nil {
			return nil, nil, fmt.Errorf("links: share URL: %w", err)
		}
		fopts = append(fopts, TrustOrigins(origin(u)))
	}
	if len(trusted) > 0 {
		fopts = append(fopts, TrustOrigins(trusted...))
	}
	if len(fopts) > 0 {
		f, err := NewFetcher(fopts...)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, stash.WithLinkFetcher(f))
	}
	return signer, opts, nil
}
