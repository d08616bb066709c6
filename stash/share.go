package stash

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

// Share-link limits.
const (
	// MaxShareTTL is the longest lifetime Share grants (an S3 presigned URL
	// cannot live longer either).
	MaxShareTTL = 7 * 24 * time.Hour
	// MinLinkKeySize is the shortest HMAC secret WithLinkKeys accepts. 32
	// random bytes (openssl rand -base64 32) is the size to use.
	MinLinkKeySize = 32
	// MaxLinkLength bounds a share link that Retrieve or Open will parse.
	MaxLinkLength = 8 << 10
)

// ErrForbidden is a share link that is refused: its signature does not
// verify (a tampered path, expiry, signature or key id, or a key that has
// been retired), the server that serves it answered 403, or it points at a
// host the engine was not configured to trust (WithLinkOrigins). A refused
// link never yields data. errors.Is(ErrForbidden, ErrInvalidAddress) is true:
// such a link is an address that is not allowed.
var ErrForbidden error = forbiddenError{}

type forbiddenError struct{}

func (forbiddenError) Error() string { return "stash: share link refused" }

// Is makes errors.Is(ErrForbidden, ErrInvalidAddress) true.
func (forbiddenError) Is(target error) bool { return target == ErrInvalidAddress }

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, args...))
}

// A LinkKey is one HMAC-SHA256 key for share links. The ID travels in every
// link signed with the key, so keys can rotate: sign with a new key while
// the old one still verifies the links it signed, then retire it.
type LinkKey struct {
	// ID names the key in links: 1 to 32 of [A-Za-z0-9_-].
	ID string
	// Secret is at least MinLinkKeySize random bytes.
	Secret []byte
}

func (k LinkKey) validate() error {
	if k.ID == "" || len(k.ID) > 32 {
		return fmt.Errorf("stash: link key id %q: want 1 to 32 of [A-Za-z0-9_-]", truncate(k.ID))
	}
	for i := 0; i < len(k.ID); i++ {
		c := k.ID[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("stash: link key id %q: want 1 to 32 of [A-Za-z0-9_-]", truncate(k.ID))
		}
	}
	if len(k.Secret) < MinLinkKeySize {
		return fmt.Errorf("stash: link key %q: secret of %d bytes, want at least %d", k.ID, len(k.Secret), MinLinkKeySize)
	}
	return nil
}

// ParseLinkKeys parses keys written as "id:secret[,id:secret...]", the
// secret in base64 (standard or URL alphabet, padded or not), as the
// CLAIMSTASH_LINK_KEYS variable of the command line holds them. The first key
// signs; all of them verify.
func ParseLinkKeys(s string) ([]LinkKey, error) {
	var keys []LinkKey
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, enc, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("stash: link key %q: want id:base64-secret", truncate(id))
		}
		var secret []byte
		var err error
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if secret, err = e.Strict().DecodeString(enc); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stash: link key %q: secret is not base64", truncate(id))
		}
		k := LinkKey{ID: id, Secret: secret}
		if err := k.validate(); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("stash: no link keys")
	}
	return keys, nil
}

// WithLinkKeys sets the HMAC keys of share links on backends that cannot
// presign (mem, file, nats). The first key signs new links; every key
// verifies, so an old key can stay listed until its links have expired. Key
// IDs must be unique.
func WithLinkKeys(keys ...LinkKey) Option {
	return func(e *Engine) error {
		if len(keys) == 0 {
			return errors.New("stash: WithLinkKeys: no keys")
		}
		seen := map[string]bool{}
		out := make([]LinkKey, 0, len(keys))
		for _, k := range keys {
			if err := k.validate(); err != nil {
				return err
			}
			if seen[k.ID] {
				return fmt.Errorf("stash: WithLinkKeys: key id %q twice", k.ID)
			}
			seen[k.ID] = true
			out = append(out, LinkKey{ID: k.ID, Secret: append([]byte(nil), k.Secret...)})
		}
		e.links.keys = out
		return nil
	}
}

// WithShareBaseURL sets where the engine's ShareHandler is reachable, for
// example "https://stash.example.com/share/". Share builds HMAC-signed links
// under it, and its origin is trusted by Retrieve and Open (as with
// WithLinkOrigins). Use https outside of tests.
func WithShareBaseURL(rawURL string) Option {
	return func(e *Engine) error {
		u, err := parseOrigin(rawURL, true)
		if err != nil {
			return fmt.Errorf("stash: WithShareBaseURL: %w", err)
		}
		e.links.base = u
		e.links.trust(u)
		return nil
	}
}

// Share returns a link, valid for ttl (DefaultShareTTL if ttl is zero, at
// most MaxShareTTL), through which anyone holding it can GET the payload of
// address without credentials, as kstash's stash.share(ttl_sec=...) does.
// Backends that presign natively (driver.Signer: S3) return a presigned URL,
// with a fragment naming the address, size and encoding (fragments are never
// sent to the server); the others return a link to the engine's ShareHandler
// under WithShareBaseURL, signed with the first WithLinkKeys key over the
// method, the path (which encodes the address) and the expiry. A presigned
// URL serves the stored bytes as they are, so for a compressed stash Share
// prefers a handler link when keys and a base URL are configured: whoever
// follows it gets the payload itself.
//
// Either kind of link names the stash's digest, and Retrieve and Open of the
// link verify the bytes they fetch against it. A missing stash is
// ErrNotFound, an expired one ErrExpired; an inline address, or an engine
// with neither a Signer backend nor keys and a base URL, is ErrUnsupported.
func (e *Engine) Share(ctx context.Context, address string, ttl time.Duration) (_ string, err error) {
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
	if isLink(address) {
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
	if err != nil {
		return "", err
	}
	if err := e.check(addr, a); err != nil {
		return "", err
	}
	// A presigned URL serves the stored bytes as they are: prefer the
	// handler, which decodes, for encoded stashes when it is configured.
	if s, ok := b.driver.(driver.Signer); ok && (a.Encoding == driver.EncodingIdentity || !e.links.canSign()) {
		u, err := s.SignedURL(ctx, addr.Namespace, addr.Key(), ttl)
		switch {
		case err == nil:
			return presignedLink(u, addr, a)
		case !errors.Is(err, ErrUnsupported) || !e.links.canSign():
			return "", err
		}
		// The driver cannot presign this one; an HMAC link can.
	}
	if !e.links.canSign() {
		return "", fmt.Errorf("%w: share links for %s:// need WithLinkKeys and WithShareBaseURL", ErrUnsupported, addr.Scheme)
	}
	return e.links.sign(addr, e.now().Add(ttl)), nil
}

// presignedLink appends to a backend's presigned URL a fragment naming the
// address, the decoded size and the stored encoding. A fragment is never
// sent to the server, so the presigned signature is untouched; Retrieve
// checks that the signed path ends with the address's key, so the digest it
// verifies against is the one the backend's signature covers.
func presignedLink(raw string, addr Address, a *driver.Attributes) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" {
		return "", fmt.Errorf("stash: backend returned an unusable presigned URL")
	}
	if !strings.HasSuffix(u.Path, "/"+addr.Key()) {
		return "", fmt.Errorf("stash: presigned URL path does not end with the stash key")
	}
	f := url.Values{}
	f.Set(fragAddress, addr.String())
	f.Set(fragSize, strconv.FormatInt(a.Size, 10))
	if a.Encoding != driver.EncodingIdentity {
		f.Set(fragEncoding, string(a.Encoding))
	}
	return raw + "#" + f.Encode(), nil
}

// Fragment and query parameters of links.
const (
	fragAddress  = "stash"
	fragSize     = "size"
	fragEncoding = "enc"
	queryExpiry  = "exp"
	queryKeyID   = "kid"
	querySig     = "sig"
)

// linkPath is the part of an HMAC link's path that encodes the address:
// "/scheme/namespace/key". It is what the signature covers.
func linkPath(addr Address) string {
	return "/" + addr.Scheme + "/" + addr.Namespace + "/" + addr.Key()
}

// mac computes the signature of a link: HMAC-SHA256 over a version tag, the
// method, the address path, the expiry and the key id.
func mac(secret []byte, method, path string, exp int64, kid string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("claimstash-link-v1\n" + method + "\n" + path + "\n" + strconv.FormatInt(exp, 10) + "\n" + kid))
	return h.Sum(nil)
}

func (c *linkConfig) canSign() bool { return len(c.keys) > 0 && c.base != nil }

func (c *linkConfig) sign(addr Address, expires time.Time) string {
	k := c.keys[0]
	exp := expires.Unix()
	if expires.Nanosecond() != 0 {
		exp++ // round up: a link lives at least its TTL
	}
	path := linkPath(addr)
	q := url.Values{}
	q.Set(queryExpiry, strconv.FormatInt(exp, 10))
	q.Set(queryKeyID, k.ID)
	q.Set(querySig, base64.RawURLEncoding.EncodeToString(mac(k.Secret, "GET", path, exp, k.ID)))
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String()
}

// verify checks an HMAC link's query against its address path: the
// signature first (a refusal is ErrForbidden), then the expiry (ErrExpired).
// HEAD is allowed wherever GET is.
func (c *linkConfig) verify(path, rawQuery string, now time.Time) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return forbidden("malformed query")
	}
	for k, v := range q {
		if k != queryExpiry && k != queryKeyID && k != querySig || len(v) != 1 {
			return forbidden("unexpected query parameter %q", truncate(k))
		}
	}
	expS, kid, sigS := q.Get(queryExpiry), q.Get(queryKeyID), q.Get(querySig)
	if expS == "" || kid == "" || sigS == "" {
		return forbidden("missing signature")
	}
	if len(expS) > 12 || strings.TrimLeft(expS, "0123456789") != "" {
		return forbidden("malformed expiry")
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return forbidden("malformed expiry")
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigS)
	if err != nil || len(sig) != sha256.Size {
		return forbidden("malformed signature")
	}
	var key *LinkKey
	for i := range c.keys {
		if c.keys[i].ID == kid {
			key = &c.keys[i]
			break
		}
	}
	if key == nil {
		return forbidden("unknown key id")
	}
	if !hmac.Equal(sig, mac(key.Secret, "GET", path, exp, kid)) {
		return forbidden("signature does not verify")
	}
	if !now.Before(time.Unix(exp, 0)) {
		return fmt.Errorf("%w: share link expired at %s", ErrExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}
