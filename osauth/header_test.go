package osauth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
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
