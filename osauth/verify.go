package osauth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Permission is one thing a token may allow.
type Permission string

// The permissions objectstore knows.
const (
	Read   Permission = "object.read"
	Write  Permission = "object.write"
	Delete Permission = "object.delete"
)

// AllPermissions is every permission, in a fixed order.
var AllPermissions = []Permission{Read, Write, Delete}

func (p Permission) valid() bool { return p == Read || p == Write || p == Delete }

// ParsePermission parses "object.read", "object.write" or "object.delete",
// or the short forms "read", "write" and "delete".
func ParsePermission(s string) (Permission, error) {
	p := Permission(s)
	if !p.valid() {
		p = Permission("object." + s)
	}
	if !p.valid() {
		return "", fmt.Errorf("osauth: unknown permission %q (known: object.read, object.write, object.delete)", s)
	}
	return p, nil
}

// Scope is one component of a request's scope, "org=42".
type Scope struct {
	Key, Value string
}

// Wildcard as a claim value allows any value of that scope (or usecase).
const Wildcard = "*"

// Audience is the aud a token must carry when it carries one.
const Audience = "objectstore"

// Claim names.
const (
	ClaimResource    = "res"
	ClaimUsecase     = "os:usecase"
	ClaimPermissions = "permissions"
)

// Presigned URL query parameters and limits.
const (
	ParamKid       = "os_kid"
	ParamTimestamp = "os_timestamp"
	ParamDuration  = "os_duration"
	ParamSig       = "os_sig"
	// ParamAuth carries a token in the query when no header does.
	ParamAuth = "os_auth"
	// HeaderAuth is objectstore's own token header; Authorization is
	// read when it is absent.
	HeaderAuth = "x-os-auth"

	MaxPresignDuration = 7 * 24 * time.Hour
	ClockSkew          = 60 * time.Second
)

// Errors, by the HTTP status a server answers them with. Every error the
// Verifier returns matches exactly one of them.
var (
	// ErrMissing: no token and no presigned signature (400).
	ErrMissing = errors.New("osauth: no token")
	// ErrUnauthenticated: a malformed or badly signed token or signature, an
	// unknown key id, an expired token or URL, a refused algorithm (401).
	ErrUnauthenticated = errors.New("osauth: not authenticated")
	// ErrForbidden: a valid token that does not allow this request (403).
	ErrForbidden = errors.New("osauth: not permitted")
)

// Request is what a request needs to be allowed: a permission on a usecase
// and scopes.
type Request struct {
	Usecase    string
	Scopes     []Scope
	Permission Permission
}

// Verifier checks tokens and presigned URLs against a KeySource. The zero
// value is not usable; call NewVerifier.
type Verifier struct {
	keys    KeySource
	issuers []string
	now     func() time.Time
	parser  *jwt.Parser

	mu       sync.Mutex
	verified map[string]*verifiedToken
}

// verifiedToken is what a token whose signature checked out says: clients
// send the same token for many requests (objectstash reuses one for a
// quarter of its lifetime), and verifying an Ed25519 signature and parsing
// the JSON again for each is most of the cost of a small request. Expiry,
// the key (still known, still the same) and the request's usecase, scopes
// and permission are checked on every use, as for a new token.
type verifiedToken struct {
	kid      string
	key      ed25519.PublicKey
	exp, nbf time.Time
	res      map[string]string
	perms    []Permission
}

// maxVerified bounds the verified tokens remembered; only tokens with a
// valid signature are, so an attacker cannot fill it with garbage.
const maxVerified = 4096

// A VerifierOption configures a Verifier.
type VerifierOption interface{ apply(*Verifier) }

type verifierOption func(*Verifier)

func (f verifierOption) apply(v *Verifier) { f(v) }

// WithIssuers sets the issuers a token's iss may name. A token with an iss
// outside them (or with any iss, when none are set) is refused; a token
// without iss is accepted.
func WithIssuers(iss ...string) VerifierOption {
	return verifierOption(func(v *Verifier) { v.issuers = append([]string(nil), iss...) })
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) VerifierOption {
	return verifierOption(func(v *Verifier) { v.now = now })
}

// NewVerifier makes a Verifier over keys.
func NewVerifier(keys KeySource, opts ...VerifierOption) *Verifier {
	v := &Verifier{keys: keys, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(v)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		// One encoding per token: a signature whose unused low bits are
		// set decodes to the same bytes, but is not the signer's token.
		jwt.WithStrictDecoding(),
	)
	return v
}

type claims struct {
	jwt.RegisteredClaims
	Res         map[string]any `json:"res"`
	Permissions []Permission   `json:"permissions"`
}

// TokenFrom extracts a token from a request: x-os-auth, else Authorization
// (both "Bearer <jwt>"), else the os_auth query parameter. It returns "" when
// there is none.
func TokenFrom(r *http.Request) string {
	for _, h := range []string{HeaderAuth, "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			if t, ok := strings.CutPrefix(v, "Bearer "); ok {
				return strings.TrimSpace(t)
			}
			return v // not a bearer token: VerifyToken refuses it
		}
	}
	return r.URL.Query().Get(ParamAuth)
}

// oneToken is TokenFrom's token, refused when r carries others that differ
// from it: several x-os-auth lines, a bearer Authorization beside x-os-auth
// or an os_auth parameter beside a header. Whatever reads the request before
// this server (a proxy, a log) might go by another of them.
func oneToken(r *http.Request) (string, error) {
	tok := TokenFrom(r)
	if tok == "" {
		return "", nil
	}
	var others []string
	for _, h := range []string{HeaderAuth, "Authorization"} {
		for _, val := range r.Header.Values(h) {
			if val == "" {
				continue
			}
			if t, ok := strings.CutPrefix(val, "Bearer "); ok {
				others = append(others, strings.TrimSpace(t))
			} else if h == HeaderAuth {
				others = append(others, val)
			} // another scheme in Authorization is a proxy's, not ours
		}
	}
	others = append(others, r.URL.Query()[ParamAuth]...)
	for _, o := range others {
		if o != "" && o != tok {
			return "", unauth("the request carries different tokens (%s, Authorization, %s)", HeaderAuth, ParamAuth)
		}
	}
	return tok, nil
}

// Authorize checks r's token, or else its presigned signature, against req.
// It returns nil or an error matching ErrMissing, ErrUnauthenticated or
// ErrForbidden. A request carrying tokens that differ is refused.
func (v *Verifier) Authorize(r *http.Request, req Request) error {
	tok, err := oneToken(r)
	if err != nil {
		return err
	}
	if tok != "" {
		return v.VerifyToken(tok, req)
	}
	if r.URL.Query().Has(ParamSig) {
		// The signature covers the path as it came on the wire, even
		// when a prefix was stripped before this handler.
		path := r.URL.EscapedPath()
		if strings.HasPrefix(r.RequestURI, "/") {
			path, _, _ = strings.Cut(r.RequestURI, "?")
		}
		return v.VerifyPresigned(r.Method, path, r.URL.RawQuery, req)
	}
	return ErrMissing
}

func unauth(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, fmt.Sprintf(format, args...))
}

func forbid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, args...))
}

// VerifyToken checks a JWT: EdDSA only, kid selecting a known key, exp
// required and not passed, aud objectstore and iss a configured issuer when
// present, res covering req's usecase and every scope req names, and
// permissions (intersected with the key's maximum) holding req.Permission.
func (v *Verifier) VerifyToken(token string, req Request) error {
	now := v.now()
	v.mu.Lock()
	t := v.verified[token]
	v.mu.Unlock()
	if t != nil {
		k, ok := v.keys.PublicKey(t.kid)
		if ok && k.Key.Equal(t.key) && now.Before(t.exp) && !now.Before(t.nbf) {
			return t.allows(req, k.MaxPermissions)
		}
		v.mu.Lock()
		delete(v.verified, token)
		v.mu.Unlock()
	}
	t, key, err := v.verify(token)
	if err != nil {
		return err
	}
	v.mu.Lock()
	if len(v.verified) >= maxVerified {
		for tok, old := range v.verified {
			if !now.Before(old.exp) {
				delete(v.verified, tok)
			}
		}
		if len(v.verified) >= maxVerified {
			clear(v.verified)
		}
	}
	if v.verified == nil {
		v.verified = make(map[string]*verifiedToken)
	}
	v.verified[token] = t
	v.mu.Unlock()
	return t.allows(req, key.MaxPermissions)
}

// verify checks a token's signature, algorithm, kid, time claims, audience
// and issuer, and returns what it says and the key that signed it.
func (v *Verifier) verify(token string) (*verifiedToken, *PublicKey, error) {
	var c claims
	var key *PublicKey
	var kid string
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, fmt.Errorf("algorithm %v refused", t.Header["alg"])
		}
		// crit names header extensions a verifier must understand or
		// refuse the token for (RFC 7515, 4.1.11): this one knows none.
		// jku, x5u, jwk and x5c are never read: only kid picks a key,
		// and only among the configured ones.
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("critical header extensions are not supported")
		}
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token without kid")
		}
		k, ok := v.keys.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", clip(kid))
		}
		key = k
		return k.Key, nil
	})
	if err != nil {
		return nil, nil, unauth("%v", err)
	}
	if err := v.oneClaimEach(token); err != nil {
		return nil, nil, unauth("%v", err)
	}
	if len(c.Audience) > 0 && !slices.Contains([]string(c.Audience), Audience) {
		return nil, nil, unauth("audience %q, want %q", []string(c.Audience), Audience)
	}
	if c.Issuer != "" && !slices.Contains(v.issuers, c.Issuer) {
		return nil, nil, unauth("issuer %q is not accepted", clip(c.Issuer))
	}
	res := make(map[string]string, len(c.Res))
	for k, val := range c.Res {
		s, ok := val.(string)
		if !ok {
			return nil, nil, unauth("claim res.%s is not a string", clip(k))
		}
		res[k] = s
	}
	if _, ok := res[ClaimUsecase]; !ok {
		return nil, nil, unauth("token names no usecase")
	}
	t := &verifiedToken{kid: kid, key: key.Key, exp: c.ExpiresAt.Time, res: res, perms: c.Permissions}
	if c.NotBefore != nil {
		t.nbf = c.NotBefore.Time
	}
	return t, key, nil
}

// knownClaims are the claims verify reads.
var knownClaims = []string{"exp", "nbf", "iat", "iss", "aud", "sub", "jti", ClaimResource, ClaimPermissions}

// oneClaimEach refuses a payload that names a member twice, at any depth,
// a claim in another case ("EXP") or a time claim that is not a number
// ("exp": "1700000000"): the JSON decoder would take the last of two, match
// names regardless of case and read a number from a string, where other
// verifiers refuse or read otherwise, so a token would not mean the same to
// all of them.
func (v *Verifier) oneClaimEach(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("token is malformed")
	}
	b, err := v.parser.DecodeSegment(parts[1])
	if err != nil {
		return fmt.Errorf("token is malformed: %v", err)
	}
	type frame struct {
		obj, wantKey bool
		keys         map[string]struct{}
	}
	var stack []*frame
	numeric := "" // a time claim whose value comes next
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("token is malformed: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.wantKey {
			if _, dup := top.keys[key]; dup {
				return fmt.Errorf("claim %q given twice", clip(key))
			}
			top.keys[key] = struct{}{}
			top.wantKey = false
			if len(stack) == 1 {
				for _, c := range knownClaims {
					if key != c && strings.EqualFold(key, c) {
						return fmt.Errorf("claim %q: want %q", clip(key), c)
					}
				}
				if key == "exp" || key == "nbf" || key == "iat" {
					numeric = key
				}
			}
			continue
		}
		if numeric != "" {
			if _, ok := tok.(json.Number); !ok {
				return fmt.Errorf("claim %q is not a number", numeric)
			}
			numeric = ""
		}
		switch tok {
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.obj {
			top.wantKey = true // a value: a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, wantKey: true, keys: map[string]struct{}{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		}
	}
}

// allows checks a verified token against a request, with max the key's
// maximum permissions.
func (t *verifiedToken) allows(req Request, max []Permission) error {
	res := t.res
	if uc := res[ClaimUsecase]; uc != Wildcard && uc != req.Usecase {
		return forbid("token is for usecase %q, not %q", clip(uc), clip(req.Usecase))
	}
	for _, s := range req.Scopes {
		want, ok := res[s.Key]
		if !ok || (want != Wildcard && want != s.Value) {
			return forbid("token does not cover scope %s=%s", clip(s.Key), clip(s.Value))
		}
	}
	if !allowed(t.perms, max, req.Permission) {
		return forbid("token does not grant %s", req.Permission)
	}
	return nil
}

// allowed reports whether p is in granted and (when max is not empty) in max.
func allowed(granted, max []Permission, p Permission) bool {
	return slices.Contains(granted, p) && (len(max) == 0 || slices.Contains(max, p))
}

// CanonicalForm is the string a presigned URL signs:
//
//	METHOD\n<escaped path>\n<query pairs, keys lowercased, os_sig left out, sorted, joined by &>
//
// with HEAD signed as GET. Path and query are as they appear on the wire.
func CanonicalForm(method, escapedPath, rawQuery string) string {
	method = strings.ToUpper(method)
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var pairs []string
	for _, p := range strings.Split(rawQuery, "&") {
		if p == "" {
			continue
		}
		k, val, hasVal := strings.Cut(p, "=")
		k = strings.ToLower(k)
		if k == ParamSig {
			continue
		}
		if hasVal {
			pairs = append(pairs, k+"="+val)
		} else {
			pairs = append(pairs, k)
		}
	}
	sort.Strings(pairs)
	return method + "\n" + escapedPath + "\n" + strings.Join(pairs, "&")
}

// VerifyPresigned checks a presigned request: GET or HEAD, a known os_kid
// whose maximum allows reading, os_timestamp (RFC 3339) and os_duration
// (seconds, at most 7 days) framing now within 60 s of skew, and os_sig an
// Ed25519 signature over CanonicalForm. The path is signed, so it names the
// usecase, scopes and key itself; req is checked for the read permission.
func (v *Verifier) VerifyPresigned(method, escapedPath, rawQuery string, req Request) error {
	q, err := parseQuery(rawQuery)
	if err != nil {
		return unauth("presigned URL: %v", err)
	}
	kid, ts, dur, sig := q[ParamKid], q[ParamTimestamp], q[ParamDuration], q[ParamSig]
	if kid == "" || ts == "" || dur == "" || sig == "" {
		return unauth("presigned URL wants %s, %s, %s and %s", ParamKid, ParamTimestamp, ParamDuration, ParamSig)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return unauth("presigned URL: %s: %v", ParamTimestamp, err)
	}
	secs, err := strconv.ParseUint(dur, 10, 32)
	if err != nil || secs == 0 || time.Duration(secs)*time.Second > MaxPresignDuration {
		return unauth("presigned URL: %s %q: want 1 to %d seconds", ParamDuration, clip(dur), int(MaxPresignDuration/time.Second))
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return unauth("presigned URL: malformed signature")
	}
	key, ok := v.keys.PublicKey(kid)
	if !ok {
		return unauth("presigned URL: unknown key id %q", clip(kid))
	}
	if !ed25519.Verify(key.Key, []byte(CanonicalForm(method, escapedPath, rawQuery)), raw) {
		return unauth("presigned URL: bad signature")
	}
	now := v.now()
	if now.Before(t.Add(-ClockSkew)) {
		return unauth("presigned URL is not valid yet")
	}
	if !now.Before(t.Add(time.Duration(secs)*time.Second + ClockSkew)) {
		return unauth("presigned URL has expired")
	}
	if m := strings.ToUpper(method); m != http.MethodGet && m != http.MethodHead {
		return forbid("presigned URLs allow only GET and HEAD")
	}
	if req.Permission != Read || !allowed([]Permission{Read}, key.MaxPermissions, Read) {
		return forbid("presigned URL does not grant %s", req.Permission)
	}
	return nil
}

// parseQuery decodes a raw query into single values, keys lowercased; a
// parameter given twice is an error.
func parseQuery(raw string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, val, _ := strings.Cut(p, "=")
		k = strings.ToLower(k)
		dv, err := queryUnescape(val)
		if err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("parameter %q given twice", clip(k))
		}
		out[k] = dv
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func queryUnescape(s string) (string, error) { return url.QueryUnescape(s) }

// ParsePermissions parses a comma-separated list of permissions
// ("read,write" or "object.read,object.delete"); "" and "all" are all.
func ParsePermissions(csv string) ([]Permission, error) {
	csv = strings.TrimSpace(csv)
	if csv == "" || csv == "all" {
		return append([]Permission(nil), AllPermissions...), nil
	}
	var out []Permission
	for _, f := range strings.Split(csv, ",") {
		p, err := ParsePermission(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}
