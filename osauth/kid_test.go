package osauth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
)

// TestKidNeverAPath: a kid is looked up among the keys the directory holds,
// never joined into a path: a token or presigned URL whose kid climbs out of
// the key directory to a real key there, or names a path, a dot, nothing,
// a NUL or 10 KiB, is refused.
func TestKidNeverAPath(t *testing.T) {
	root := t.TempDir()
	dir, outside := filepath.Join(root, "keys"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	relay, err := osauth.GenerateKey(dir, "relay")
	if err != nil {
		t.Fatal(err)
	}
	relayKey, err := osauth.LoadPrivateKey(relay.Private)
	if err != nil {
		t.Fatal(err)
	}
	out, err := osauth.GenerateKey(outside, "x")
	if err != nil {
		t.Fatal(err)
	}
	s, err := osauth.NewSigner("x", out.Private)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := osauth.OpenKeyDir(dir, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	v := osauth.NewVerifier(keys)
	// The same token and URL, by the key in the directory under its own
	// kid, are accepted: what is refused below is refused for its kid.
	if err := v.VerifyToken(kidToken(t, relayKey, "relay"), req); err != nil {
		t.Fatalf("control token: %v", err)
	}
	if err := v.Authorize(httptest.NewRequest("GET", kidURL(relayKey, "relay"), nil), req); err != nil {
		t.Fatalf("control presigned URL: %v", err)
	}
	for _, kid := range []string{"../outside/x", "../outside/x.pub", out.Public, strings.TrimSuffix(out.Public, ".pub"),
		"a/b", ".", "..", "", "relay\x00", "\x00", strings.Repeat("r", 10<<10), "relay/", "./relay"} {
		// By the key outside (which a kid read as a path would reach)
		// and by the one inside (which a kid normalised to relay would).
		for _, key := range []ed25519.PrivateKey{s.Key, relayKey} {
			if err := v.VerifyToken(kidToken(t, key, kid), req); !errors.Is(err, osauth.ErrUnauthenticated) {
				t.Errorf("token with kid %q: %v, want ErrUnauthenticated", clipKid(kid), err)
			}
			if err := v.Authorize(httptest.NewRequest("GET", kidURL(key, kid), nil), req); !errors.Is(err, osauth.ErrUnauthenticated) {
				t.Errorf("presigned URL with kid %q: %v, want ErrUnauthenticated", clipKid(kid), err)
			}
		}
	}
}

func kidToken(t *testing.T, key ed25519.PrivateKey, kid string) string {
	t.Helper()
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"res":         map[string]string{"os:usecase": "testing", "org": "17", "project": "42"},
		"permissions": []string{"object.read"},
		"exp":         time.Now().Add(time.Hour).Unix(),
	})
	tk.Header["kid"] = kid
	tok, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// kidURL presigns a GET under any kid, as Signer.Presign would under a
// valid one.
func kidURL(key ed25519.PrivateKey, kid string) string {
	path := "/v1/objects/testing/org=17;project=42/k"
	q := osauth.ParamKid + "=" + url.QueryEscape(kid) + "&" + osauth.ParamTimestamp + "=" + time.Now().UTC().Format(time.RFC3339) + "&" + osauth.ParamDuration + "=3600"
	return "http://h" + path + "?" + q + "&" + osauth.ParamSig + "=" + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(osauth.CanonicalForm("GET", path, q))))
}

func clipKid(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// TestKeyDirSymlinks: KeyDir follows a symlinked key file (how Kubernetes
// mounts secrets and config maps: kid.pub -> ..data/kid.pub), so who may
// write the directory decides what it serves; a symlink to a directory or a
// dangling one is refused at start, and skipped, its kid refused, on a
// rescan.
func TestKeyDirSymlinks(t *testing.T) {
	root := t.TempDir()
	dir, data := filepath.Join(root, "keys"), filepath.Join(root, "keys", "..data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := osauth.GenerateKey(data, "relay"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "relay.pub"), filepath.Join(dir, "relay.pub")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	keys, err := osauth.OpenKeyDir(dir, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys.PublicKey("relay"); !ok {
		t.Fatal("symlinked key file not served")
	}
	for name, target := range map[string]string{"dir": data, "dangling": filepath.Join(root, "nothing.pub")} {
		link := filepath.Join(dir, name+".pub")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if _, err := osauth.OpenKeyDir(dir, -1); err == nil {
			t.Errorf("symlink to a %s: OpenKeyDir accepted it", name)
		}
		time.Sleep(2 * time.Millisecond)
		if _, ok := keys.PublicKey(name); ok {
			t.Errorf("symlink to a %s: served", name)
		}
		if _, ok := keys.PublicKey("relay"); !ok {
			t.Errorf("symlink to a %s: the good key beside it is lost", name)
		}
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
	}
}
