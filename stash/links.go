package stash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

// linkConfig holds the share-link settings of an engine.
type linkConfig struct {
	keys    []LinkKey       // keys[0] signs; all verify
	base    *url.URL        // where the ShareHandler is served
	origins map[string]bool // "scheme://host[:port]" whose links Retrieve fetches
	client  *http.Client
}

func (c *linkConfig) trust(u *url.URL) {
	if c.origins == nil {
		c.origins = map[string]bool{}
	}
	c.origins[origin(u)] = true
}

func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// parseOrigin parses an absolute http(s) URL without credentials, query or
// fragment; withPath allows a path.
func parseOrigin(raw string, withPath bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%q: want an https:// URL", raw)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("%q: want https://host[:port]/path, no credentials, query or fragment", raw)
	case !withPath && u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("%q: want an origin, https://host[:port]", raw)
	}
	return u, nil
}

// WithLinkOrigins makes Retrieve and Open fetch share links from these
// origins ("https://host[:port]"), and only from them and the origin of
// WithShareBaseURL. Addresses arrive in messages and are untrusted, so by
// default an engine fetches no link at all: one from anywhere else is
// ErrForbidden, before any request is made. Redirects are followed only to
// trusted origins.
func WithLinkOrigins(origins ...string) Option {
	return func(e *Engine) error {
		for _, o := range origins {
			u, err := parseOrigin(o, false)
			if err != nil {
				return fmt.Errorf("stash: WithLinkOrigins: %w", err)
			}
			e.links.trust(u)
		}
		return nil
	}
}

// WithLinkClient sets the HTTP client that fetches share links (by default
// one with connection, TLS-handshake and response-header timeouts but no
// overall timeout, so large payloads can stream). The engine uses a copy
// whose redirect policy allows trusted origins only.
func WithLinkClient(c *http.Client) Option {
	return func(e *Engine) error {
		if c == nil {
			return errors.New("stash: WithLinkClient: nil client")
		}
		e.links.client = c
		return nil
	}
}

var defaultLinkTransport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	ForceAttemptHTTP2:     true,
	MaxIdleConns:          100,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 30 * time.Second,
	ExpectContinueTimeout: time.Second,
}

// httpClient is the configured client with the trusted-redirect policy.
func (c *linkConfig) httpClient() *http.Client {
	var hc http.Client
	if c.client != nil {
		hc = *c.client
	} else {
		hc.Transport = defaultLinkTransport
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return forbidden("too many redirects")
		}
		if !c.origins[origin(req.URL)] {
			return forbidden("redirect to untrusted origin %s", origin(req.URL))
		}
		return nil
	}
	return &hc
}

func isLink(address string) bool {
	return strings.HasPrefix(address, "https://") || strings.HasPrefix(address, "http://")
}

// link is a parsed share link.
type link struct {
	url      *url.URL // without fragment
	addr     Address  // the stash it names
	size     int64    // decoded size from the fragment; -1 if not given
	encoding driver.Encoding
	hmac     bool // an engine link (exp/kid/sig), not a presigned one
}

// parseLink parses a share link and recovers the address it names: from the
// fragment of a presigned link (whose signed path must end with the
// address's key), or from the path of an engine link, read from the end:
// ".../scheme/namespace[/k=v...]/name.digest".
func parseLink(raw string) (*link, error) {
	if len(raw) > MaxLinkLength {
		return nil, invalid("share link longer than %d bytes", MaxLinkLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("share link: %v", err)
	}
	if u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, invalid("share link: want https://host/path, no credentials")
	}
	l := &link{size: -1}
	if u.Fragment != "" {
		f, err := url.ParseQuery(u.EscapedFragment())
		if err != nil {
			return nil, invalid("share link fragment: %v", err)
		}
		for k, v := range f {
			if k != fragAddress && k != fragSize && k != fragEncoding || len(v) != 1 {
				return nil, invalid("share link fragment: unexpected %q", truncate(k))
			}
		}
		if l.addr, err = ParseAddress(f.Get(fragAddress)); err != nil {
			return nil, err
		}
		if !strings.HasSuffix(u.Path, "/"+l.addr.Key()) {
			return nil, invalid("share link path does not end with the key of %s", l.addr)
		}
		if s := f.Get(fragSize); s != "" {
			if l.size, err = strconv.ParseInt(s, 10, 64); err != nil || l.size < 0 {
				return nil, invalid("share link fragment: bad size")
			}
		}
		switch enc := driver.Encoding(f.Get(fragEncoding)); enc {
		case driver.EncodingIdentity, driver.EncodingZstd:
			l.encoding = enc
		default:
			return nil, fmt.Errorf("%w: share link encoding %q", ErrUnsupported, truncate(string(enc)))
		}
	} else {
		if l.addr, err = addressFromPath(u.Path); err != nil {
			return nil, err
		}
		l.hmac = true
	}
	if l.addr.IsInline() {
		return nil, invalid("share link names an inline address")
	}
	u.Fragment, u.RawFragment = "", ""
	l.url = u
	return l, nil
}

// addressFromPath reads ".../scheme/namespace[/k=v...]/name.digest" from
// the end of an engine link's path; whatever precedes it is the base path.
func addressFromPath(p string) (Address, error) {
	segs := strings.Split(p, "/")
	i := len(segs) - 2
	for i >= 0 && strings.Contains(segs[i], "=") {
		i--
	}
	if i < 1 {
		return Address{}, invalid("share link path names no stash")
	}
	s := segs[i-1] + "://" + strings.Join(segs[i:], "/")
	if segs[i-1] == SchemeInline {
		return Address{}, invalid("share link names an inline address")
	}
	return ParseAddress(s)
}

// fetchLink checks a link against the engine's trust and keys, GETs it and
// returns the response body with the attributes to decode and verify it by.
// A non-nil body must be closed by the caller.
func (e *Engine) fetchLink(ctx context.Context, raw string) (io.ReadCloser, Address, *driver.Attributes, error) {
	l, err := parseLink(raw)
	if err != nil {
		return nil, Address{}, nil, err
	}
	if !e.links.origins[origin(l.url)] {
		return nil, l.addr, nil, forbidden("origin %s is not trusted (WithLinkOrigins)", origin(l.url))
	}
	if err := e.precheck(l); err != nil {
		return nil, l.addr, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url.String(), nil)
	if err != nil {
		return nil, l.addr, nil, invalid("share link: %v", err)
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := e.links.httpClient().Do(req)
	if err != nil {
		return nil, l.addr, nil, fmt.Errorf("stash: share link: %w", err)
	}
	if err := statusError(resp); err != nil {
		drain(resp.Body)
		return nil, l.addr, nil, err
	}
	a, err := e.linkAttrs(l, resp)
	if err != nil {
		drain(resp.Body)
		return nil, l.addr, nil, err
	}
	return resp.Body, l.addr, a, nil
}

// drain reads a little of a refused response, so the connection can be
// reused, and closes it. Nothing read is ever returned.
func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 4<<10)
	_ = rc.Close()
}

// precheck refuses what can be refused without a request: a link this
// engine signed itself is verified with its keys, and any link whose own
// expiry has passed is ErrExpired.
func (e *Engine) precheck(l *link) error {
	now := e.now()
	if l.hmac {
		if len(e.links.keys) > 0 && e.links.base != nil && origin(e.links.base) == origin(l.url) {
			return e.links.verify(linkPath(l.addr), l.url.RawQuery, now)
		}
		if exp, err := strconv.ParseInt(l.url.Query().Get(queryExpiry), 10, 64); err == nil && !now.Before(time.Unix(exp, 0)) {
			return fmt.Errorf("%w: share link expired", ErrExpired)
		}
		return nil
	}
	// SigV4 presigned: X-Amz-Date (20060102T150405Z) plus X-Amz-Expires seconds.
	q := l.url.Query()
	date, err1 := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	secs, err2 := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err1 == nil && err2 == nil && !now.Before(date.Add(time.Duration(secs)*time.Second)) {
		return fmt.Errorf("%w: share link expired", ErrExpired)
	}
	return nil
}

// statusError maps a share-link response status onto the stash errors.
func statusError(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusForbidden, http.StatusUnauthorized:
		return forbidden("server answered %s", resp.Status)
	case http.StatusGone:
		return fmt.Errorf("%w: server answered %s", ErrExpired, resp.Status)
	case http.StatusNotFound:
		return fmt.Errorf("%w: server answered %s", ErrNotFound, resp.Status)
	}
	return fmt.Errorf("stash: share link: server answered %s", resp.Status)
}

// linkAttrs works out the size and encoding of a link's response, refusing
// sizes over the engine's limit before anything is read.
func (e *Engine) linkAttrs(l *link, resp *http.Response) (*driver.Attributes, error) {
	enc := l.encoding
	switch ce := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "zstd":
		enc = driver.EncodingZstd
	default:
		return nil, fmt.Errorf("%w: share link response Content-Encoding %q", ErrUnsupported, truncate(ce))
	}
	if resp.ContentLength > e.maxSize && enc == driver.EncodingIdentity {
		return nil, fmt.Errorf("%w: share link response of %d bytes over the limit of %d", ErrTooLarge, resp.ContentLength, e.maxSize)
	}
	size := l.size
	switch {
	case enc == driver.EncodingIdentity && size < 0:
		size = resp.ContentLength
	case enc == driver.EncodingIdentity && resp.ContentLength >= 0 && resp.ContentLength != size:
		return nil, fmt.Errorf("%w: share link response of %d bytes, the link says %d", ErrIntegrity, resp.ContentLength, size)
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: share link response of unknown length", ErrIntegrity)
	}
	if size > e.maxSize {
		return nil, fmt.Errorf("%w: share link payload of %d bytes over the limit of %d", ErrTooLarge, size, e.maxSize)
	}
	stored := resp.ContentLength
	if stored < 0 {
		stored = 0
	}
	if err := checkServerAttrs(l, resp, size, enc); err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	if ct == defaultContentType {
		ct = ""
	}
	return &driver.Attributes{Size: size, StoredSize: stored, Encoding: enc, Digest: l.addr.Digest, ContentType: ct}, nil
}

// linkReadStart bounds the buffer a link's Retrieve starts with: beyond it,
// the buffer grows only as the server's bytes actually arrive.
const linkReadStart = 8 << 20

// serverAttrsHeader is the response header in which S3 returns the
// attributes the s3 backend stored with an object (user metadata
// "claimstash").
const serverAttrsHeader = "X-Amz-Meta-Claimstash"

// checkServerAttrs compares what a link's fragment says (decoded size and
// encoding) with what the server reports about the object it serves: its
// Content-Length and, where the server returns them (an S3 presigned link),
// the attributes stored with it. A fragment can be edited by whoever holds
// the link; the server's description cannot, so any disagreement is
// ErrIntegrity before a byte of the body is read.
func checkServerAttrs(l *link, resp *http.Response, size int64, enc driver.Encoding) error {
	raw := resp.Header.Get(serverAttrsHeader)
	if raw == "" {
		return nil
	}
	var a driver.Attributes
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil // not ours: the digest still decides
	}
	switch {
	case a.Digest != "" && a.Digest != l.addr.Digest:
		return fmt.Errorf("%w: share link names digest %.12s…, the server's object has %.12s…", ErrIntegrity, l.addr.Digest, a.Digest)
	case a.Size != size:
		return fmt.Errorf("%w: share link says %d bytes, the server's object holds %d", ErrIntegrity, size, a.Size)
	case a.Encoding != enc:
		return fmt.Errorf("%w: share link says encoding %q, the server's object is %q", ErrIntegrity, enc, a.Encoding)
	case resp.ContentLength >= 0 && a.StoredSize != resp.ContentLength:
		return fmt.Errorf("%w: server sends %d bytes of an object stored in %d", ErrIntegrity, resp.ContentLength, a.StoredSize)
	}
	return nil
}

// retrieveLink reads a whole share link into memory and verifies it against
// the digest the link names.
func (e *Engine) retrieveLink(ctx context.Context, address string) (*Stash, error) {
	body, addr, a, err := e.fetchLink(ctx, address)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := readVerified(body, a, addr, linkReadStart)
	if err != nil {
		return nil, err
	}
	s := stashFrom(addr, a)
	s.Data = data
	return s, nil
}

// openLink streams a share link, verifying it as it goes.
func (e *Engine) openLink(ctx context.Context, address string) (*Reader, error) {
	body, addr, a, err := e.fetchLink(ctx, address)
	if err != nil {
		return nil, err
	}
	r, err := newReader(body, a, addr)
	if err != nil {
		body.Close()
		return nil, err
	}
	return r, nil
}
