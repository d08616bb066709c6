package osauth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/osauth"
)

// TestPublicKeyFileContents: a public key file is one PEM PUBLIC KEY block
// of an Ed25519 key and nothing else; a private key, a second block, text
// around it, other key types and keys of the wrong length are refused, by
// ParsePublicKeyPEM and by KeyDir (which skips the file and reports it).
func TestPublicKeyFileContents(t *testing.T) {
	dir := t.TempDir()
	files, err := osauth.GenerateKey(dir, "good")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(files.Public)
	priv, _ := os.ReadFile(files.Private)
	spki := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	cat := func(bs ...[]byte) []byte {
		return []byte(strings.Join(func() []string {
			s := []string{}
			for _, b := range bs {
				s = append(s, string(b))
			}
			return s
		}(), ""))
	}
	for name, tc := range map[string]struct {
		b    []byte
		want string // "" accepted, else a word the error holds
	}{
		"control":                {pub, ""},
		"control CRLF, blank":    {[]byte("\r\n" + strings.ReplaceAll(string(pub), "\n", "\r\n") + "\r\n\r\n"), ""},
		"private key":            {priv, "private"},
		"public then private":    {cat(pub, priv), "private"},
		"private then public":    {cat(priv, pub), "private"},
		"two public blocks":      {cat(pub, pub), "beside"},
		"trailing garbage":       {cat(pub, []byte("garbage\n")), "beside"},
		"leading text":           {cat([]byte("ED25519 Public-Key:\n"), pub), "beside"},
		"PEM headers":            {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"Comment": "x"}, Bytes: mustBlock(t, pub)}), "headers"},
		"certificate block":      {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: mustBlock(t, pub)}), "CERTIFICATE"},
		"RSA":                    {spki(&rsaKey.PublicKey), "Ed25519"},
		"EC":                     {spki(&ecKey.PublicKey), "Ed25519"},
		"Ed25519 31 bytes":       {spki(edPub[:31]), "size"},
		"Ed25519 33 bytes":       {spki(append(append(ed25519.PublicKey{}, edPub...), 0)), "size"},
		"not PEM":                {[]byte("hello"), "PEM"},
		"empty":                  {nil, "PEM"},
		"truncated base64 block": {pub[:len(pub)/2], "PEM"},
	} {
		_, err := osauth.ParsePublicKeyPEM(tc.b)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error about %q", name, err, tc.want)
		}
		if tc.want == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "bad.pub"), tc.b, 0o644); err != nil {
			t.Fatal(err)
		}
		// At start a file that does not parse is an error naming it; a
		// rescan skips it (TestKeyDirRemovalBesideBadFile).
		if _, err := osauth.OpenKeyDir(dir, -1); err == nil || !strings.Contains(err.Error(), "bad.pub") {
			t.Errorf("%s: OpenKeyDir: %v, want an error naming bad.pub", name, err)
		}
	}
}

func mustBlock(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	return blk.Bytes
}
