package links

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

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// MinKeySize is the shortest HMAC secret NewHMAC accepts. 32 random bytes
// (openssl rand -base64 32) is the size to use.
const MinKeySize = 32

// Query parameters of HMAC links.
const (
	queryExpiry = "exp"
	queryKeyID  = "kid"
	querySig    = "sig"
)

// A Key is one HMAC-SHA256 key for share links. The ID travels in every
// link signed with the key, so keys can rotate: sign with a new key while
// the old one still verifies the links it signed, then retire it.
type Key struct {
	// ID names the key in links: 1 to 32 of [A-Za-z0-9_-].
	ID string
	// Secret is at least MinKeySize random bytes.
	Secret []byte
}

func (k Key) validate() error {
	if k.ID == "" || len(k.ID) > 32 || strings.Trim(k.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		return fmt.Errorf("links: key id %q: want 1 to 32 of [A-Za-z0-9_-]", truncate(k.ID))
	}
	if len(k.Secret) < MinKeySize {
		return fmt.Errorf("links: key %q: secret of %d bytes, want at least %d", k.ID, len(k.Secret), MinKeySize)
	}
	return nil
}

// ParseKeys parses keys written as "id:secret[,id:secret...]", the secret
// in base64 (standard or URL alphabet, padded or not), as the
// CLAIMSTASH_LINK_KEYS variable of the command line holds them. The first
// key signs; all of them verify.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, enc, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("links: key %q: want id:base64-secret", truncate(id))
		}
		var secret []byte
		var err error
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if secret, err = e.Strict().DecodeString(enc); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("links: key %q: secret is not base64", truncate(id))
		}
		k := Key{ID: id, Secret: secret}
		if err := k.validate(); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("links: no keys")
	}
	return keys, nil
}

// HMAC signs share links for backends that cannot presign, and verifies
// them where they are served (NewHandler). A link is the base URL, then
// stash.LinkPath of the address, then exp (Unix seconds), kid and sig:
// HMAC-SHA256 over a version tag, the method, that path, the expiry and the
// key id, in base64url. It implements driver.Signer and driver.Verifier.
type HMAC struct {
	keys []Key // keys[0] signs; all verify
	base *url.URL
}

var (
	_ driver.Signer   = (*HMAC)(nil)
	_ driver.Verifier = (*HMAC)(nil)
)

// NewHMAC returns a signer whose links point under baseURL, where its
// handler is served ("https://stash.example.com/share/"; use https outside
// of tests), signed with keys[0] and verified with any of keys. Key IDs
// must be unique. A server that only verifies may pass an empty baseURL;
// its SignURL is then ErrUnsupported.
func NewHMAC(baseURL string, keys ...Key) (*HMAC, error) {
	if len(keys) == 0 {
		return nil, errors.New("links: NewHMAC: no keys")
	}
	h := &HMAC{}
	seen := map[string]bool{}
	for _, k := range keys {
		if err := k.validate(); err != nil {
			return nil, err
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("links: NewHMAC: key id %q twice", k.ID)
		}
		seen[k.ID] = true
		h.keys = append(h.keys, Key{ID: k.ID, Secret: append([]byte(nil), k.Secret...)})
	}
	if baseURL != "" {
		u, err := parseOrigin(baseURL, true)
		if err != nil {
			return nil, fmt.Errorf("links: NewHMAC: %w", err)
		}
		h.base = u
	}
	return h, nil
}

// Origin is the origin ("https://host[:port]") of the base URL, or "".
func (h *HMAC) Origin() string {
	if h.base == nil {
		return ""
	}
	return origin(h.base)
}

// SignURL implements driver.Signer.
func (h *HMAC) SignURL(_ context.Context, r driver.LinkRequest) (string, error) {
	if h.base == nil {
		return "", fmt.Errorf("%w: links: HMAC signer without a base URL", stash.ErrUnsupported)
	}
	k := h.keys[0]
	exp := r.Expires.Unix()
	if r.Expires.Nanosecond() != 0 {
		exp++ // round up: a link lives at least its TTL
	}
	path := "/" + r.Scheme + "/" + r.Namespace + "/" + r.Key
	q := url.Values{}
	q.Set(queryExpiry, strconv.FormatInt(exp, 10))
	q.Set(queryKeyID, k.ID)
	q.Set(querySig, base64.RawURLEncoding.EncodeToString(mac(k.Secret, "GET", path, exp, k.ID)))
	u := *h.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// mac computes the signature of a link: HMAC-SHA256 over a version tag, the
// method, the address path, the expiry and the key id.
func mac(secret []byte, method, path string, exp int64, kid string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("claimstash-link-v1\n" + method + "\n" + path + "\n" + strconv.FormatInt(exp, 10) + "\n" + kid))
	return m.Sum(nil)
}

// VerifyURL implements driver.Verifier: the signature first (a refusal is
// stash.ErrForbidden), then the expiry (stash.ErrExpired). HEAD is allowed
// wherever GET is; other methods are refused.
func (h *HMAC) VerifyURL(method string, u *url.URL, now time.Time) error {
	if method != "GET" && method != "HEAD" {
		return forbidden("method %s", truncate(method))
	}
	if u.RawPath != "" {
		// A path this signer writes needs no escaping: one spelled with
		// percent-encoding (a "%2f" for a slash) is not a link it made.
		return forbidden("percent-encoded path")
	}
	addr, err := stash.LinkPathAddress(u.Path)
	if err != nil {
		return forbidden("the path names no stash")
	}
	path := stash.LinkPath(addr)
	q, err := url.ParseQuery(u.RawQuery)
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
	var key *Key
	for i := range h.keys {
		if h.keys[i].ID == kid {
			key = &h.keys[i]
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
		return fmt.Errorf("%w: share link expired at %s", stash.ErrExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", stash.ErrForbidden, fmt.Sprintf(format, args...))
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

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
