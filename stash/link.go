package stash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

// Share-link limits and defaults.
const (
	// MaxShareTTL is the longest lifetime Share grants (an S3 presigned URL
	// cannot live longer either).
	MaxShareTTL = 7 * 24 * time.Hour
	// MaxLinkLength bounds a share link that ParseLink, Retrieve or Open will
	// parse.
	MaxLinkLength = 8 << 10
)

// A LinkFetcher fetches share links for Retrieve and Open. It holds the one
// list of origins this process trusts and its own HTTP client; the engine
// keeps the integrity check: whatever a fetcher returns is decoded and
// verified against the digest the link names, as a backend's bytes are.
// Package stash/links implements it; WithLinkFetcher gives it to an engine,
// which without one fetches no link at all.
type LinkFetcher interface {
	// Trusted reports, without a request, whether l may be fetched: nil, or
	// an error matching ErrForbidden (an untrusted origin, a link this
	// process signed that does not verify) or ErrExpired.
	Trusted(l *Link) error
	// Fetch GETs l, once Trusted allows it. It returns a 200 response,
	// whose body the caller closes, or an error: ErrForbidden (the server
	// refused), ErrExpired (410), ErrNotFound (404), or a transport failure.
	Fetch(ctx context.Context, l *Link) (*http.Response, error)
}

// A Link is a parsed share link: the URL to GET and the stash it names.
type Link struct {
	// URL is the link without its fragment: what is requested.
	URL *url.URL
	// Address is the stash the link names; its digest is what the fetched
	// bytes are verified against.
	Address Address
	// Size is the payload's size if the link says it (a presigned link's
	// fragment does), or -1.
	Size int64
	// Encoding is how the response body is encoded when its server sends
	// no Content-Encoding: a presigned link serves the stored bytes.
	Encoding driver.Encoding
	// Presigned is a backend's own presigned URL (with a fragment naming
	// the stash); otherwise the link is a handler link, whose path ends
	// with "/scheme/namespace[/key=value...]/name.digest".
	Presigned bool
}

// IsLink reports whether s is a share link (an http or https URL) rather
// than a stash address.
func IsLink(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// Fragment parameters of presigned links, and the query of handler links.
const (
	fragAddress  = "stash"
	fragSize     = "size"
	fragEncoding = "enc"
)

// ParseLink parses a share link and recovers the address it names: from the
// fragment of a presigned link, whose path must end with the address's
// "name.digest" (so the digest verified is the one the signature covers;
// how a store lays out namespace and scopes before it is its own: S3 keys,
// objectstore's /v1/objects/usecase/k=v;k2=v2/key), or from the end of a
// handler link's path. Anything else is an error matching
// ErrInvalidAddress (ErrForbidden for a fragment that names a stash the
// signed path does not hold). It never panics.
func ParseLink(raw string) (*Link, error) {
	if len(raw) > MaxLinkLength {
		return nil, invalid("share link longer than %d bytes", MaxLinkLength)
	}
	if !IsLink(raw) {
		return nil, invalid("share link: want an http or https URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("share link: %v", err)
	}
	if u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, invalid("share link: want https://host/path, no credentials")
	}
	l := &Link{Size: -1}
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
		if l.Address, err = ParseAddress(f.Get(fragAddress)); err != nil {
			return nil, err
		}
		if !strings.HasSuffix(u.Path, "/"+lastSegment(l.Address)) {
			return nil, fmt.Errorf("%w: share link path does not end with the name and digest of %s", ErrForbidden, l.Address)
		}
		if s := f.Get(fragSize); s != "" {
			if l.Size, err = strconv.ParseInt(s, 10, 64); err != nil || l.Size < 0 {
				return nil, invalid("share link fragment: bad size")
			}
		}
		switch enc := driver.Encoding(f.Get(fragEncoding)); enc {
		case driver.EncodingIdentity, driver.EncodingZstd:
			l.Encoding = enc
		default:
			return nil, fmt.Errorf("%w: share link encoding %q", ErrUnsupported, truncate(string(enc)))
		}
		l.Presigned = true
	} else if l.Address, err = LinkPathAddress(u.Path); err != nil {
		return nil, err
	}
	if l.Address.IsInline() {
		return nil, invalid("share link names an inline address")
	}
	u.Fragment, u.RawFragment = "", ""
	l.URL = u
	return l, nil
}

// LinkPath is the part of a handler link's path that encodes addr:
// "/scheme/namespace[/key=value...]/name.digest". Signers of handler links
// put it at the end of the link's path and sign it.
func LinkPath(addr Address) string {
	return "/" + addr.Scheme + "/" + addr.Namespace + "/" + addr.Key()
}

// LinkPathAddress reads the address from the end of a handler link's path
// (see LinkPath); whatever precedes it is where the handler is mounted.
func LinkPathAddress(p string) (Address, error) {
	segs := strings.Split(p, "/")
	i := len(segs) - 2
	for i >= 0 && strings.Contains(segs[i], "=") {
		i--
	}
	if i < 1 {
		return Address{}, invalid("share link path names no stash")
	}
	if segs[i-1] == SchemeInline {
		return Address{}, invalid("share link names an inline address")
	}
	return ParseAddress(segs[i-1] + "://" + strings.Join(segs[i:], "/"))
}

// WithLinkSigner sets how Share signs links for backends that cannot
// presign (mem, file, nats): package stash/links' HMAC signer, whose
// handler serves what it signs, decoded. A backend that presigns natively
// (driver.Signer) signs its own links; for a compressed stash the engine
// prefers this signer, when set, because a presigned URL serves the stored
// bytes as they are.
func WithLinkSigner(s driver.Signer) Option {
	return engineOption(func(e *Engine) error {
		if s == nil {
			return errors.New("stash: WithLinkSigner: nil signer")
		}
		e.linkSigner = s
		return nil
	})
}

// WithLinkFetcher makes Retrieve and Open accept share links, fetched by f
// (package stash/links' Fetcher, with its list of trusted origins).
// Without it an engine fetches no link: one is ErrForbidden, before any
// request is made.
func WithLinkFetcher(f LinkFetcher) Option {
	return engineOption(func(e *Engine) error {
		if f == nil {
			return errors.New("stash: WithLinkFetcher: nil fetcher")
		}
		e.linkFetcher = f
		return nil
	})
}

// Share returns a link, valid for ttl (DefaultShareTTL if ttl is zero, at
// most MaxShareTTL), through which anyone holding it can GET the payload of
// address without credentials, as kstash's stash.share(ttl_sec=...) does.
// Backends that presign natively (driver.Signer: S3) return a presigned URL,
// with a fragment naming the address, size and encoding (fragments are never
// sent to the server); the others return a link made by the WithLinkSigner
// signer. A presigned URL serves the stored bytes as they are, so for a
// compressed stash Share prefers the WithLinkSigner signer when there is
// one: whoever follows its link gets the payload itself.
//
// A link never outlives its stash, whichever kind it is: where the stash
// expires before ttl is up (its time-to-live deadline, or for a
// time-to-idle its idle deadline as of the call, by the engine's clock,
// WithClock), the link expires then, cut down to the whole second, because
// whoever follows a presigned URL is served by a store that knows nothing
// of the stash's expiry. Reads through the link do not lengthen it. A stash
// without an expiry gets the whole ttl.
//
// Either kind of link names the stash's digest, and Retrieve and Open of the
// link verify the bytes they fetch against it. A missing stash is
// ErrNotFound, an expired one (or one that expires before the next whole
// second, too soon for any link) ErrExpired; an inline address, or an
// engine with neither a presigning backend nor a link signer, is
// ErrUnsupported.
func (e *Engine) Share(ctx context.Context, address string, ttl time.Duration) (_ string, err error) {
	if !e.made() {
		return "", opError("share", address, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpShare, address)
	defer func() { done(nil, err) }()
	link, err := e.share(ctx, address, ttl)
	if err != nil {
		return "", opError("share", address, err)
	}
	return link, nil
}

func (e *Engine) share(ctx context.Context, address string, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = DefaultShareTTL
	}
	if ttl < 0 || ttl > MaxShareTTL {
		return "", fmt.Errorf("share TTL %v outside (0, %v]", ttl, MaxShareTTL)
	}
	if IsLink(address) {
		return "", invalid("cannot share a share link")
	}
	addr, b, err := e.resolve(address)
	if err != nil {
		return "", err
	}
	if addr.IsInline() {
		return "", fmt.Errorf("%w: an inline address carries its data: share the address itself", ErrUnsupported)
	}
	a, err := b.driver.Stat(ctx, addr.Namespace, addr.Key())
	if err == nil && a == nil {
		err = errNoAnswer
	}
	if err != nil {
		return "", err
	}
	if err := e.check(addr, a); err != nil {
		return "", err
	}
	expires, err := e.linkExpiry(addr, a, ttl)
	if err != nil {
		return "", err
	}
	req := driver.LinkRequest{Scheme: addr.Scheme, Namespace: addr.Namespace, Key: addr.Key(), Expires: expires}
	if s, ok := b.driver.(driver.Signer); ok && (a.Encoding == driver.EncodingIdentity || e.linkSigner == nil) {
		u, err := s.SignURL(ctx, req)
		switch {
		case err == nil:
			return presignedLink(u, addr, a)
		case !errors.Is(err, ErrUnsupported) || e.linkSigner == nil:
			return "", err
		}
		// The backend cannot presign this one; the link signer can.
	}
	if e.linkSigner == nil {
		return "", fmt.Errorf("%w: share links for %s:// need a link signer (WithLinkSigner)", ErrUnsupported, addr.Scheme)
	}
	return e.linkSigner.SignURL(ctx, req)
}

// linkExpiry is when a link to the stash with attributes a, asked for ttl,
// stops working: ttl from now, but never after the stash itself expires (the
// earlier of its TTL deadline and its idle deadline as of now). Clients
// other than an engine (curl, a presigned URL's own server, a kstash peer)
// know nothing of the stash's expiry and would read its bytes until they
// are swept.
//
// Signers write expiries in whole seconds and round a lifetime up (HMAC's
// exp; SigV4's X-Amz-Date plus X-Amz-Expires; objectstore's os_timestamp
// plus os_duration), so a link may live until now+ttl rounded up to the
// second: a stash that ends before that gets its own expiry cut down to the
// second, which no signer rounds past. A stash that expires before the
// next whole second is ErrExpired: no link that ends in time could be
// signed.
func (e *Engine) linkExpiry(addr Address, a *driver.Attributes, ttl time.Duration) (time.Time, error) {
	now := e.now()
	expires := now.Add(ttl)
	latest := expires.Truncate(time.Second)
	if latest.Before(expires) {
		latest = latest.Add(time.Second)
	}
	s := stashOf(addr, a)
	if end := s.Expiry(); !end.IsZero() && end.Before(latest) {
		expires = end.Truncate(time.Second)
		if !expires.After(now) {
			return time.Time{}, fmt.Errorf("%w: the stash expires before the next whole second, at %s", ErrExpired, end.UTC().Format(time.RFC3339Nano))
		}
	}
	return expires, nil
}

// presignedLink appends to a backend's presigned URL a fragment naming the
// address, the decoded size and the stored encoding. A fragment is never
// sent to the server, so the presigned signature is untouched.
func presignedLink(raw string, addr Address, a *driver.Attributes) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" {
		return "", errors.New("backend returned an unusable presigned URL")
	}
	if !strings.HasSuffix(u.Path, "/"+lastSegment(addr)) {
		return "", errors.New("presigned URL path does not end with the stash's name and digest")
	}
	f := url.Values{}
	f.Set(fragAddress, addr.String())
	f.Set(fragSize, strconv.FormatInt(a.Size, 10))
	if a.Encoding != driver.EncodingIdentity {
		f.Set(fragEncoding, string(a.Encoding))
	}
	return raw + "#" + f.Encode(), nil
}

// TrustsLink reports whether Retrieve and Open would fetch link: nil, or an
// error matching ErrForbidden (no LinkFetcher, or one that does not trust
// the link) or ErrInvalidAddress (not a link). It makes no request.
func (e *Engine) TrustsLink(link string) error {
	if !e.made() {
		return errNotMade
	}
	l, err := ParseLink(link)
	if err != nil {
		return err
	}
	return e.trusts(l)
}

func (e *Engine) trusts(l *Link) error {
	if e.linkFetcher == nil {
		return fmt.Errorf("%w: this engine fetches no share links (WithLinkFetcher)", ErrForbidden)
	}
	return e.linkFetcher.Trusted(l)
}

// fetchLink parses, checks and GETs a link and returns the response body
// with the address and attributes to decode and verify it by, as a driver's
// Get does. The caller closes the body.
func (e *Engine) fetchLink(ctx context.Context, raw string) (*source, error) {
	l, err := ParseLink(raw)
	if err != nil {
		return nil, err
	}
	if err := e.trusts(l); err != nil {
		return nil, err
	}
	resp, err := e.linkFetcher.Fetch(ctx, l)
	if err != nil {
		return nil, err
	}
	a, err := e.linkAttrs(l, resp)
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	return &source{rc: resp.Body, addr: l.Address, attrs: a, startMax: linkReadStart}, nil
}

const defaultContentType = "application/octet-stream"

// linkAttrs works out the size and encoding of a link's response, refusing
// sizes over the engine's limit before anything is read.
func (e *Engine) linkAttrs(l *Link, resp *http.Response) (*driver.Attributes, error) {
	enc := l.Encoding
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
	size := l.Size
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
	stored := max(resp.ContentLength, 0)
	if err := e.checkServerAttrs(l, resp, size, enc); err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	if ct == defaultContentType {
		ct = ""
	}
	return &driver.Attributes{Size: size, StoredSize: stored, Encoding: enc, Digest: l.Address.Digest, ContentType: ct}, nil
}

// serverAttrsHeader is the response header in which S3 returns the
// attributes the s3 backend stored with an object (user metadata
// "claimstash").
const serverAttrsHeader = "X-Amz-Meta-Claimstash"

// checkServerAttrs compares what a link's fragment says (decoded size and
// encoding) with what the server reports about the object it serves: its
// Content-Length and, where the server returns them (an S3 presigned link),
// the attributes stored with it. A fragment can be edited by whoever holds
// the link; the server's description cannot, so any disagreement is
// ErrIntegrity before a byte of the body is read. A stash they say has
// expired is ErrExpired, as its address reads: a presigned URL may outlive
// it, and its server knows nothing of its expiry.
func (e *Engine) checkServerAttrs(l *Link, resp *http.Response, size int64, enc driver.Encoding) error {
	raw := resp.Header.Get(serverAttrsHeader)
	if raw == "" {
		return nil
	}
	var a driver.Attributes
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil // not ours: the digest still decides
	}
	switch {
	case a.Digest != "" && a.Digest != l.Address.Digest:
		return fmt.Errorf("%w: share link names digest %.12s…, the server's object has %.12s…", ErrIntegrity, l.Address.Digest, a.Digest)
	case a.Size != size:
		return fmt.Errorf("%w: share link says %d bytes, the server's object holds %d", ErrIntegrity, size, a.Size)
	case a.Encoding != enc:
		return fmt.Errorf("%w: share link says encoding %q, the server's object is %q", ErrIntegrity, enc, a.Encoding)
	case resp.ContentLength >= 0 && a.StoredSize != resp.ContentLength:
		return fmt.Errorf("%w: server sends %d bytes of an object stored in %d", ErrIntegrity, resp.ContentLength, a.StoredSize)
	case e.expired(&a):
		return ErrExpired
	}
	return nil
}

// lastSegment is the last path segment of an address's key: "name.digest".
func lastSegment(a Address) string { return a.Name + "." + a.Digest }
