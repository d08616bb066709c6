package osauth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
)

// signWith signs claims good for req with key under kid, with extra header
// fields.
func signWith(t *testing.T, f *fixture, key ed25519.PrivateKey, kid string, header map[string]any) string {
	t.Helper()
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"res":         map[string]string{"os:usecase": "testing", "org": "17", "project": "42"},
		"permissions": []string{"object.read"},
		"exp":         f.now.Add(time.Minute).Unix(),
	})
	tk.Header["kid"] = kid
	for k, v := range header {
		tk.Header[k] = v
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenHeaderKeysNeverFollowed: a token that points at its own key (jku,
// x5u: a URL; jwk: the key itself) and is signed by it is refused, and the
// URLs are never fetched.
func TestTokenHeaderKeysNeverFollowed(t *testing.T) {
	f := newFixture(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "relay", "x": base64.RawURLEncoding.EncodeToString(pub)}
	for name, h := range map[string]map[string]any{
		"jku": {"jku": srv.URL + "/jwks.json"},
		"x5u": {"x5u": srv.URL + "/cert.pem"},
		"jwk": {"jwk": jwk},
	} {
		for _, kid := range []string{"relay", "mallory"} {
			tok := signWith(t, f, priv, kid, h)
			if err := f.v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
				t.Errorf("%s header, kid %s, signed by the key it names: %v, want ErrUnauthenticated", name, kid, err)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the verifier fetched a key URL from a token %d times", n)
	}
	// The same headers on a token the configured key signed change nothing.
	if err := f.v.VerifyToken(signWith(t, f, f.signer.Key, "relay", map[string]any{"jku": srv.URL, "jwk": jwk}), req); err != nil {
		t.Fatalf("token signed by the configured key with ignored headers: %v", err)
	}
}

// TestTokenCritRefused: a crit header names extensions the verifier must
// understand; it understands none, so any crit is refused (RFC 7515, 4.1.11).
func TestTokenCritRefused(t *testing.T) {
	f := newFixture(t)
	for _, crit := range []any{[]string{"exp"}, []string{"b64"}, []string{}, "b64"} {
		tok := signWith(t, f, f.signer.Key, "relay", map[string]any{"crit": crit, "b64": false})
		if err := f.v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
			t.Errorf("crit %v: %v, want ErrUnauthenticated", crit, err)
		}
	}
}

// TestTokenNonCanonicalEncoding: only the base64url without padding the
// signer wrote is accepted: padding, the standard alphabet and a signature
// with its unused low bits set (which decodes to the same bytes) are refused.
func TestTokenNonCanonicalEncoding(t *testing.T) {
	f := newFixture(t)
	var tok string
	for i := 0; ; i++ {
		tok = signWith(t, f, f.signer.Key, "relay", map[string]any{"n": i})
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; strings.ContainsAny(sig, "-_") {
			break
		}
	}
	if err := f.v.VerifyToken(tok, req); err != nil {
		t.Fatalf("control: %v", err)
	}
	parts := strings.Split(tok, ".")
	// 64 bytes are 86 characters whose last carries 4 unused bits.
	last := parts[2][len(parts[2])-1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	lowBits := alphabet[strings.IndexByte(alphabet, last)|1]
	if raw, err := base64.RawURLEncoding.DecodeString(parts[2][:len(parts[2])-1] + string(lowBits)); err != nil || lowBits == last {
		t.Fatalf("malleated signature does not decode leniently (%v) or is unchanged", err)
	} else if want, _ := base64.RawURLEncoding.DecodeString(parts[2]); string(raw) != string(want) {
		t.Fatal("malleated signature decodes to other bytes")
	}
	pad := func(s string) string { return s + strings.Repeat("=", (4-len(s)%4)%4) }
	std := strings.NewReplacer("-", "+", "_", "/").Replace
	for name, bad := range map[string]string{
		"padded signature":     parts[0] + "." + parts[1] + "." + pad(parts[2]),
		"padded header":        pad(parts[0]) + "." + parts[1] + "." + parts[2],
		"standard alphabet":    parts[0] + "." + parts[1] + "." + std(parts[2]),
		"low bits set":         parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + string(lowBits),
		"signature re-encoded": parts[0] + "." + parts[1] + "." + base64.URLEncoding.EncodeToString(mustDecode(t, parts[2])),
	} {
		if bad == tok {
			continue // padding that adds nothing
		}
		if err := f.v.VerifyToken(bad, req); !errors.Is(err, osauth.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		}
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
