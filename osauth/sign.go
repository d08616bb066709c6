package osauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenLifetime is the lifetime of a token when none is given, as
// objectstore's clients sign them.
const DefaultTokenLifetime = 60 * time.Second

// Signer mints tokens and presigns URLs with an Ed25519 private key. Its
// zero value is not usable; fill Kid and Key.
type Signer struct {
	Kid string
	Key ed25519.PrivateKey
	// Permissions a token grants when the call names none (default: all).
	Permissions []Permission
	// Lifetime of a token when the call gives none (DefaultTokenLifetime).
	Lifetime time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// NewSigner reads a private key file (GenerateKey's <kid>.key) and makes a
// Signer for kid.
func NewSigner(kid, privateKeyPath string) (*Signer, error) {
	if err := ValidKid(kid); err != nil {
		return nil, err
	}
	k, err := LoadPrivateKey(privateKeyPath)
	if err != nil {
		return nil, err
	}
	return &Signer{Kid: kid, Key: k}, nil
}

// Token mints a JWT for usecase and scopes (a scope value may be Wildcard)
// granting perms (nil: s.Permissions, or all) for lifetime (0: s.Lifetime, or
// DefaultTokenLifetime). Permissions beyond s.Permissions are refused.
func (s *Signer) Token(usecase string, scopes []Scope, perms []Permission, lifetime time.Duration) (string, error) {
	if s == nil || len(s.Key) != ed25519.PrivateKeySize {
		return "", errors.New("osauth: signer without an Ed25519 private key")
	}
	if err := ValidKid(s.Kid); err != nil {
		return "", err
	}
	if usecase == "" {
		return "", errors.New("osauth: token without a usecase")
	}
	limit := s.Permissions
	if len(limit) == 0 {
		limit = AllPermissions
	}
	if perms == nil {
		perms = limit
	}
	for _, p := range perms {
		if !p.valid() {
			return "", fmt.Errorf("osauth: unknown permission %q", p)
		}
		if !slices.Contains(limit, p) {
			return "", fmt.Errorf("osauth: permission %s is not granted to key %s", p, s.Kid)
		}
	}
	if lifetime <= 0 {
		lifetime = s.Lifetime
	}
	if lifetime <= 0 {
		lifetime = DefaultTokenLifetime
	}
	res := map[string]string{ClaimUsecase: usecase}
	for _, sc := range scopes {
		if sc.Key == "" || sc.Key == ClaimUsecase || sc.Value == "" {
			return "", fmt.Errorf("osauth: scope %q=%q: want a key and a value", sc.Key, sc.Value)
		}
		if _, dup := res[sc.Key]; dup {
			return "", fmt.Errorf("osauth: scope %q given twice", sc.Key)
		}
		res[sc.Key] = sc.Value
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		ClaimResource:    res,
		ClaimPermissions: perms,
		"exp":            jwt.NewNumericDate(s.now().Add(lifetime)),
	})
	t.Header["kid"] = s.Kid
	out, err := t.SignedString(s.Key)
	if err != nil {
		return "", fmt.Errorf("osauth: signing token: %w", err)
	}
	return out, nil
}

// Presign returns rawURL (absolute, with its path escaped as it will go on
// the wire) with os_kid, os_timestamp, os_duration and os_sig added,
// authorizing GET and HEAD for valid (at most MaxPresignDuration, rounded up
// to seconds).
func (s *Signer) Presign(method, rawURL string, valid time.Duration) (string, error) {
	if method != "GET" && method != "HEAD" {
		return "", fmt.Errorf("osauth: presigned URLs allow only GET and HEAD, not %q", method)
	}
	if valid <= 0 || valid > MaxPresignDuration {
		return "", fmt.Errorf("osauth: presigned URL lifetime %v: want above zero and at most %v", valid, MaxPresignDuration)
	}
	if len(s.Key) != ed25519.PrivateKeySize {
		return "", errors.New("osauth: signer without an Ed25519 private key")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("osauth: %w", err)
	}
	secs := int64((valid + time.Second - 1) / time.Second)
	q := u.RawQuery
	if q != "" {
		q += "&"
	}
	q += ParamKid + "=" + url.QueryEscape(s.Kid) +
		"&" + ParamTimestamp + "=" + s.now().UTC().Format("2006-01-02T15:04:05Z") +
		"&" + ParamDuration + "=" + strconv.FormatInt(secs, 10)
	sig := ed25519.Sign(s.Key, []byte(CanonicalForm(method, u.EscapedPath(), q)))
	u.RawQuery = q + "&" + ParamSig + "=" + base64.RawURLEncoding.EncodeToString(sig)
	return u.String(), nil
}

// KeyFiles names the files GenerateKey wrote.
type KeyFiles struct {
	Kid, Private, Public string
}

// NewKid makes a random key id.
func NewKid() string { return "k" + rand.Text()[:12] }

// GenerateKey makes an Ed25519 key pair for kid and writes it into dir as
// <kid>.key (PEM PKCS #8, mode 0600: what objectstore's Python client's
// SecretKey takes) and <kid>.pub (PEM SubjectPublicKeyInfo, mode 0644: what
// KeyDir and objectstore's server read). Existing files are never replaced.
func GenerateKey(dir, kid string) (KeyFiles, error) {
	if err := ValidKid(kid); err != nil {
		return KeyFiles{}, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyFiles{}, fmt.Errorf("osauth: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return KeyFiles{}, fmt.Errorf("osauth: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return KeyFiles{}, fmt.Errorf("osauth: %w", err)
	}
	f := KeyFiles{Kid: kid, Private: filepath.Join(dir, kid+PrivateKeySuffix), Public: filepath.Join(dir, kid+PublicKeySuffix)}
	if err := writeNew(f.Private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return KeyFiles{}, err
	}
	if err := writeNew(f.Public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		_ = os.Remove(f.Private)
		return KeyFiles{}, err
	}
	return f, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("osauth: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("osauth: %w", err)
	}
	return nil
}

// Mint signs one token with the private key in keyFile: what
// `claimstash token` prints. See Signer.Token.
func Mint(kid, keyFile, usecase string, scopes []Scope, perms []Permission, lifetime time.Duration) (string, error) {
	s, err := NewSigner(kid, keyFile)
	if err != nil {
		return "", err
	}
	return s.Token(usecase, scopes, perms, lifetime)
}

// ParseScopes parses scopes for a token in objectstore's path form,
// "org=42;project=*" ("_" or "" for none), keeping their order: keys and
// values of A-Za-z0-9_-()$!+', or Wildcard for a value.
func ParseScopes(s string) ([]Scope, error) {
	if s == "" || s == "_" {
		return nil, nil
	}
	var out []Scope
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || !scopeChars(k) || (v != Wildcard && !scopeChars(v)) {
			return nil, fmt.Errorf("osauth: scope %q: want key=value of A-Za-z0-9_-()$!+' (or value *)", part)
		}
		if seen[k] {
			return nil, fmt.Errorf("osauth: scope %q given twice", k)
		}
		seen[k] = true
		out = append(out, Scope{Key: k, Value: v})
	}
	return out, nil
}

func scopeChars(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-()$!+'", c) >= 0) {
			return false
		}
	}
	return true
}
