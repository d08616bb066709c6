package osauth_test

import (
	"crypto/ed25519"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
)

// FuzzToken hands the Verifier whatever a client might send as a bearer
// token, starting from a valid one and from the classic forgeries (alg
// none, HS256 keyed with the public key, a header without kid). A token
// is accepted only if what its signature covers (its first two segments)
// is exactly what the key signed; nothing panics.
func FuzzToken(f *testing.F) {
	dir := f.TempDir()
	files, err := osauth.GenerateKey(dir, "relay")
	if err != nil {
		f.Fatal(err)
	}
	valid, err := osauth.Mint("relay", files.Private, req.Usecase, req.Scopes, []osauth.Permission{osauth.Read}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	keys, err := osauth.OpenKeyDir(dir, -1)
	if err != nil {
		f.Fatal(err)
	}
	v := osauth.NewVerifier(keys)
	if err := v.VerifyToken(valid, req); err != nil {
		f.Fatalf("the valid seed is refused: %v", err)
	}
	signed := valid[:strings.LastIndexByte(valid, '.')]
	claims := jwt.MapClaims{"aud": "objectstore", "exp": time.Now().Add(time.Hour).Unix(),
		"res": map[string]string{"os:usecase": req.Usecase, "org": "17", "project": "42"}, "permissions": []string{"object.read"}}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	none.Header["kid"] = "relay"
	noneToken, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	pub, err := osauth.ParsePublicKeyPEM(mustRead(f, files.Public))
	if err != nil {
		f.Fatal(err)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = "relay"
	hsToken, _ := hs.SignedString([]byte(pub))
	_, other, _ := ed25519.GenerateKey(nil)
	foreign := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	foreign.Header["kid"] = "relay"
	foreignToken, _ := foreign.SignedString(other)
	for _, s := range []string{valid, noneToken, hsToken, foreignToken, "", ".", "..", "a.b.c", valid + ".", strings.Repeat("A", 1<<16)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		err := v.VerifyToken(token, req)
		if err == nil && !strings.HasPrefix(token, signed+".") {
			t.Fatalf("accepted a token whose signed part is not the key's: %.200q", token)
		}
	})
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
