package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
)

// Limits of the object path. Requests over them are answered 400 (or 414).
const (
	// MinUsecaseLength and MaxUsecaseLength bound a usecase name.
	// objectstore's clients want at least 3 characters; the server takes
	// shorter ones so that every stash namespace is a usecase.
	MinUsecaseLength = 1
	MaxUsecaseLength = 64
	// MaxScopeLength bounds one scope key or value.
	MaxScopeLength = 64
	// DefaultMaxScopes is how many scopes a path may carry (WithMaxScopes).
	DefaultMaxScopes = 16
	// MaxKeyLength bounds an object key, in bytes after percent-decoding.
	MaxKeyLength = 1024
	// NoScopes is the path segment that stands for an empty scope list.
	NoScopes = "_"
)

// Scope is one component of an object's scope, "org=42". Order matters.
// It is osauth's Scope, so parsed scopes go straight into tokens.
type Scope = osauth.Scope

// ObjectPath is a parsed /v1/objects/{usecase}/{scopes}/{key} path.
type ObjectPath struct {
	Usecase string
	Scopes  []Scope
	// Key is percent-decoded; empty for a POST that asks for a server-made key.
	Key string
}

// ScopeString is the path form of the scopes: "org=42;project=7", or "_".
func (p ObjectPath) ScopeString() string { return FormatScopes(p.Scopes) }

// FormatScopes writes scopes in path form: "k=v;k2=v2", or "_" for none.
func FormatScopes(scopes []Scope) string {
	if len(scopes) == 0 {
		return NoScopes
	}
	var b strings.Builder
	for i, s := range scopes {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(s.Key)
		b.WriteByte('=')
		b.WriteString(s.Value)
	}
	return b.String()
}

// scopeByte reports whether c may appear in a scope key or value:
// A-Za-z0-9 and _-()$!+'.
func scopeByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("_-()$!+'", c) >= 0
}

// ValidUsecase reports whether u is a usecase name: 1 to 64 of [A-Za-z0-9_-].
func ValidUsecase(u string) error {
	if len(u) < MinUsecaseLength || len(u) > MaxUsecaseLength {
		return fmt.Errorf("usecase %q: want %d to %d characters", clip(u), MinUsecaseLength, MaxUsecaseLength)
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("usecase %q: want letters, digits, _ and -", clip(u))
		}
	}
	return nil
}

// ParseScopes parses the path form of scopes ("org=42;project=7" or "_"),
// keeping their order. Keys and values are 1 to 64 of A-Za-z0-9_-()$!+';
// a key may appear once; at most max scopes (max <= 0: DefaultMaxScopes).
func ParseScopes(s string, max int) ([]Scope, error) {
	if max <= 0 {
		max = DefaultMaxScopes
	}
	if s == NoScopes {
		return nil, nil
	}
	if s == "" {
		return nil, fmt.Errorf("empty scopes: write %q for none", NoScopes)
	}
	parts := strings.Split(s, ";")
	if len(parts) > max {
		return nil, fmt.Errorf("%d scopes: at most %d allowed", len(parts), max)
	}
	out := make([]Scope, 0, len(parts))
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("scope %q: want key=value", clip(p))
		}
		if err := validScopePart("key", k); err != nil {
			return nil, err
		}
		if err := validScopePart("value", v); err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Key == k {
				return nil, fmt.Errorf("scope %q given twice", clip(k))
			}
		}
		out = append(out, Scope{Key: k, Value: v})
	}
	return out, nil
}

func validScopePart(what, s string) error {
	if s == "" || len(s) > MaxScopeLength {
		return fmt.Errorf("scope %s %q: want 1 to %d characters", what, clip(s), MaxScopeLength)
	}
	for i := 0; i < len(s); i++ {
		if !scopeByte(s[i]) {
			return fmt.Errorf("scope %s %q: want only A-Za-z0-9_-()$!+'", what, clip(s))
		}
	}
	return nil
}

// ValidKey reports whether k is an acceptable object key: 1 to MaxKeyLength
// bytes, no control characters, and no empty, "." or ".." segment between
// slashes, so that no two different keys could be taken for one another by
// anything that cleans paths.
func ValidKey(k string) error {
	if k == "" {
		return fmt.Errorf("empty key")
	}
	if len(k) > MaxKeyLength {
		return fmt.Errorf("key longer than %d bytes", MaxKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] == 0x7f {
			return fmt.Errorf("key %q holds a control character", clip(k))
		}
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("key %q has an empty, . or .. segment", clip(k))
		}
	}
	return nil
}

// parseObjectPath parses the escaped path after "/v1/objects/" (or after
// "/v1/objects:batch/"): "{usecase}/{scopes}/{key}". The usecase and scopes
// come from the escaped form, so an encoded slash or semicolon in them is
// refused rather than decoded into a separator; the key is decoded.
func parseObjectPath(rest string, maxScopes int) (ObjectPath, error) {
	var p ObjectPath
	uc, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return p, fmt.Errorf("want /v1/objects/{usecase}/{scopes}/{key}")
	}
	if err := ValidUsecase(uc); err != nil {
		return p, err
	}
	// Without a slash after the scopes the key is empty, as for a POST to
	// "/v1/objects/{usecase}/{scopes}", which objectstore takes too.
	sc, rawKey, _ := strings.Cut(rest, "/")
	scopes, err := ParseScopes(sc, maxScopes)
	if err != nil {
		return p, err
	}
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		return p, fmt.Errorf("key: %v", err)
	}
	if key != "" {
		if err := ValidKey(key); err != nil {
			return p, err
		}
	}
	return ObjectPath{Usecase: uc, Scopes: scopes, Key: key}, nil
}

// Storage mapping. An object is stored in the driver under
//
//	namespace = the usecase, when it is a valid stash namespace
//	key       = scope segments "k=v/..." when every scope is a valid stash
//	            scope, then the object key when it is a stash "name.<digest>"
//
// so that claimstash's own content-addressed addresses land exactly where an
// Engine over the same driver looks for them. Anything else is replaced by a
// SHA-256 of it in a reserved form: namespace "os--<56 hex>", one scope
// segment "osh=<64 hex>", name "_os.<64 hex>". The state of a multipart
// upload (see multipart.go) is kept beside the objects of its scopes under
// the name "_osmp.<64 hex>". The reserved forms are never used directly (a
// usecase starting "os--", a scope key "osh", a key named "_os.…" or
// "_osmp.…" is hashed too), so the mapping is one-to-one and nothing a
// request names can reach outside its own usecase and scopes, or reach an
// upload's state.
const (
	hashedNamespacePrefix = "os--"
	hashedScopeKey        = "osh"
	hashedName            = "_os"
	multipartName         = "_osmp"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// storageNamespace maps a usecase to a driver namespace.
func storageNamespace(usecase string) string {
	if stash.ValidateNamespace(usecase) == nil && !strings.HasPrefix(usecase, hashedNamespacePrefix) {
		return usecase
	}
	return hashedNamespacePrefix + sha(usecase)[:56]
}

// storageKey maps scopes and an object key to a driver key.
func storageKey(scopes []Scope, key string) string {
	prefix := scopePrefix(scopes)
	if directName(key) {
		return prefix + key
	}
	return prefix + hashedName + "." + sha(key)
}

// scopePrefix maps scopes to the start of a driver key: "k=v/..." when
// every scope is a valid stash scope, else the one hashed segment.
func scopePrefix(scopes []Scope) string {
	direct := len(scopes) <= stash.MaxScopes
	for _, s := range scopes {
		if s.Key == hashedScopeKey || (stash.Scope{Key: s.Key, Value: s.Value}).Validate() != nil {
			direct = false
			break
		}
	}
	if !direct {
		return hashedScopeKey + "=" + sha(FormatScopes(scopes)) + "/"
	}
	var b strings.Builder
	for _, s := range scopes {
		b.WriteString(s.Key)
		b.WriteByte('=')
		b.WriteString(s.Value)
		b.WriteByte('/')
	}
	return b.String()
}

// directName reports whether key is a stash "name.<digest>" to store as it is.
func directName(key string) bool {
	dot := strings.LastIndexByte(key, '.')
	if dot < 0 {
		return false
	}
	name := key[:dot]
	if name == hashedName || name == multipartName || stash.ValidateName(name) != nil {
		return false
	}
	a, err := stash.ParseAddress("mem://x/" + key)
	return err == nil && a.Name == name && len(a.Scopes) == 0
}

// digestOf returns the digest a direct key carries, or "".
func digestOf(key string) string {
	if !directName(key) {
		return ""
	}
	return key[strings.LastIndexByte(key, '.')+1:]
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
