package osauth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
)

func TestCanonicalFormVector(t *testing.T) {
	got := osauth.CanonicalForm("GET", "/v1/objects/testing/org=17;project=42/foo/bar",
		"os_timestamp=1985-04-12T23:20:50.52Z&os_kid=relay&os_duration=3600&os_sig=ignored")
	want := "GET\n/v1/objects/testing/org=17;project=42/foo/bar\nos_duration=3600&os_kid=relay&os_timestamp=1985-04-12T23:20:50.52Z"
	if got != want {
		t.Fatalf("canonical form\n%q\nwant\n%q", got, want)
	}
	if head := osauth.CanonicalForm("HEAD", "/p", "OS_KID=a"); head != "GET\n/p\nos_kid=a" {
		t.Fatalf("HEAD canonical form %q: want it signed as GET with keys lowercased", head)
	}
}

type fixture struct {
	dir    string
	signer *osauth.Signer
	pub    ed25519.PublicKey
	now    time.Time
	v      *osauth.Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	files, err := osauth.GenerateKey(dir, "relay")
	if err != nil {
		t.Fatal(err)
	}
	s, err := osauth.NewSigner("relay", files.Private)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(files.Public)
	pub, err := osauth.ParsePublicKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, signer: s, pub: pub, now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s.Now = func() time.Time { return f.now }
	keys, err := osauth.OpenKeyDir(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	f.v = osauth.NewVerifier(keys, osauth.WithClock(func() time.Time { return f.now }), osauth.WithIssuers("sentry"))
	return f
}

var req = osauth.Request{Usecase: "testing", Scopes: []osauth.Scope{{Key: "org", Value: "17"}, {Key: "project", Value: "42"}}, Permission: osauth.Read}

func TestTokenAccepted(t *testing.T) {
	f := newFixture(t)
	for name, tc := range map[string]struct {
		scopes []osauth.Scope
		req    osauth.Request
	}{
		"exact":               {req.Scopes, req},
		"wildcard":            {[]osauth.Scope{{Key: "org", Value: "17"}, {Key: "project", Value: "*"}}, req},
		"request names fewer": {req.Scopes, osauth.Request{Usecase: "testing", Scopes: req.Scopes[:1], Permission: osauth.Read}},
	} {
		tok, err := f.signer.Token("testing", tc.scopes, nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.v.VerifyToken(tok, tc.req); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTokenRefused(t *testing.T) {
	f := newFixture(t)
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
		tk := jwt.NewWithClaims(m, claims)
		if kid != "" {
			tk.Header["kid"] = kid
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := func() jwt.MapClaims {
		return jwt.MapClaims{
			"res":         map[string]string{"os:usecase": "testing", "org": "17", "project": "42"},
			"permissions": []string{"object.read"},
			"exp":         f.now.Add(time.Minute).Unix(),
		}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	without := func(k string) jwt.MapClaims { c := good(); delete(c, k); return c }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(f.dir, "relay.pub"))
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"good control":       {sign(jwt.SigningMethodEdDSA, f.signer.Key, good(), "relay"), nil},
		"malformed":          {"not.a.jwt", osauth.ErrUnauthenticated},
		"alg none":           {sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good(), "relay"), osauth.ErrUnauthenticated},
		"HS256 public PEM":   {sign(jwt.SigningMethodHS256, pem, good(), "relay"), osauth.ErrUnauthenticated},
		"HS256 public raw":   {sign(jwt.SigningMethodHS256, []byte(f.pub), good(), "relay"), osauth.ErrUnauthenticated},
		"RS256":              {sign(jwt.SigningMethodRS256, rsaKey, good(), "relay"), osauth.ErrUnauthenticated},
		"other key":          {sign(jwt.SigningMethodEdDSA, otherKey, good(), "relay"), osauth.ErrUnauthenticated},
		"no kid":             {sign(jwt.SigningMethodEdDSA, f.signer.Key, good(), ""), osauth.ErrUnauthenticated},
		"unknown kid":        {sign(jwt.SigningMethodEdDSA, f.signer.Key, good(), "nobody"), osauth.ErrUnauthenticated},
		"expired":            {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("exp", f.now.Add(-time.Second).Unix()), "relay"), osauth.ErrUnauthenticated},
		"no exp":             {sign(jwt.SigningMethodEdDSA, f.signer.Key, without("exp"), "relay"), osauth.ErrUnauthenticated},
		"wrong aud":          {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("aud", "elsewhere"), "relay"), osauth.ErrUnauthenticated},
		"right aud":          {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("aud", "objectstore"), "relay"), nil},
		"wrong iss":          {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("iss", "mallory"), "relay"), osauth.ErrUnauthenticated},
		"right iss":          {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("iss", "sentry"), "relay"), nil},
		"no res":             {sign(jwt.SigningMethodEdDSA, f.signer.Key, without("res"), "relay"), osauth.ErrUnauthenticated},
		"wrong usecase":      {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("res", map[string]string{"os:usecase": "other", "org": "17", "project": "42"}), "relay"), osauth.ErrForbidden},
		"wrong scope":        {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("res", map[string]string{"os:usecase": "testing", "org": "18", "project": "42"}), "relay"), osauth.ErrForbidden},
		"scope not covered":  {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("res", map[string]string{"os:usecase": "testing", "org": "17"}), "relay"), osauth.ErrForbidden},
		"wrong permission":   {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("permissions", []string{"object.write"}), "relay"), osauth.ErrForbidden},
		"scope not a string": {sign(jwt.SigningMethodEdDSA, f.signer.Key, with("res", map[string]any{"os:usecase": "testing", "org": 17}), "relay"), osauth.ErrUnauthenticated},
	} {
		err := f.v.VerifyToken(tc.tok, req)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestMaxPermissionsIntersect(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "relay.permissions"), []byte("object.write\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := osauth.OpenKeyDir(f.dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	v := osauth.NewVerifier(keys, osauth.WithClock(func() time.Time { return f.now }))
	tok, _ := f.signer.Token("testing", req.Scopes, nil, time.Minute) // claims every permission
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrForbidden) {
		t.Fatalf("read with a write-only key: %v, want ErrForbidden", err)
	}
	w := req
	w.Permission = osauth.Write
	if err := v.VerifyToken(tok, w); err != nil {
		t.Fatalf("write with a write-only key: %v", err)
	}
}

func TestKeyDirRotation(t *testing.T) {
	f := newFixture(t)
	keys, err := osauth.OpenKeyDir(f.dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys.PublicKey("fresh"); ok {
		t.Fatal("fresh key known before it exists")
	}
	files, err := osauth.GenerateKey(f.dir, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // unknown kids rescan at most once a second
	if _, ok := keys.PublicKey("fresh"); !ok {
		t.Fatalf("key added to the directory (%s) not picked up", files.Public)
	}
	if _, err := osauth.GenerateKey(f.dir, "fresh"); err == nil {
		t.Fatal("GenerateKey replaced an existing key")
	}
	fi, _ := os.Stat(files.Private)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", fi.Mode().Perm())
	}
}

func TestPresign(t *testing.T) {
	f := newFixture(t)
	raw, err := f.signer.Presign("GET", "http://127.0.0.1:1/v1/objects/testing/org=17;project=42/foo/bar", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	check := func(method, path, query string) error {
		return f.v.VerifyPresigned(method, path, query, req)
	}
	if err := check("GET", u.EscapedPath(), u.RawQuery); err != nil {
		t.Fatalf("fresh URL: %v", err)
	}
	if err := check("HEAD", u.EscapedPath(), u.RawQuery); err != nil {
		t.Fatalf("HEAD with a GET signature: %v", err)
	}
	for name, tc := range map[string]struct {
		method, path, query string
		want                error
	}{
		"other path":   {"GET", strings.Replace(u.EscapedPath(), "org=17", "org=18", 1), u.RawQuery, osauth.ErrUnauthenticated},
		"longer":       {"GET", u.EscapedPath(), strings.Replace(u.RawQuery, "os_duration=3600", "os_duration=7200", 1), osauth.ErrUnauthenticated},
		"PUT":          {"PUT", u.EscapedPath(), u.RawQuery, osauth.ErrUnauthenticated},
		"extra param":  {"GET", u.EscapedPath(), u.RawQuery + "&x=1", osauth.ErrUnauthenticated},
		"no signature": {"GET", u.EscapedPath(), strings.Split(u.RawQuery, "&os_sig=")[0], osauth.ErrUnauthenticated},
	} {
		if err := check(tc.method, tc.path, tc.query); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	f.now = f.now.Add(time.Hour + 59*time.Second)
	if err := check("GET", u.EscapedPath(), u.RawQuery); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	f.now = f.now.Add(2 * time.Second)
	if err := check("GET", u.EscapedPath(), u.RawQuery); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Fatalf("expired URL: %v", err)
	}
	if _, err := f.signer.Presign("GET", "http://x/", 8*24*time.Hour); err == nil {
		t.Fatal("presigned for more than 7 days")
	}
	if _, err := f.signer.Presign("DELETE", "http://x/", time.Hour); err == nil {
		t.Fatal("presigned a DELETE")
	}
}

func TestSignerRefusesEscalation(t *testing.T) {
	f := newFixture(t)
	f.signer.Permissions = []osauth.Permission{osauth.Read}
	if _, err := f.signer.Token("testing", nil, []osauth.Permission{osauth.Delete}, 0); err == nil {
		t.Fatal("minted a permission the signer does not hold")
	}
}

func TestKeyDirRemoval(t *testing.T) {
	f := newFixture(t)
	keys, err := osauth.OpenKeyDir(f.dir, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := osauth.GenerateKey(f.dir, "spare"); err != nil { // the directory must keep a key
		t.Fatal(err)
	}
	v := osauth.NewVerifier(keys, osauth.WithClock(func() time.Time { return f.now }))
	tok, _ := f.signer.Token("testing", req.Scopes, nil, time.Hour)
	if err := v.VerifyToken(tok, req); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.dir, "relay.pub")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Fatalf("token of a removed key: %v, want ErrUnauthenticated", err)
	}
}

// FuzzPresigned: whatever a request's path and query, verification never
// panics and never accepts what the key did not sign.
func FuzzPresigned(f *testing.F) {
	f.Add("GET", "/v1/objects/testing/org=17;project=42/foo/bar", "os_kid=relay&os_timestamp=1985-04-12T23:20:50.52Z&os_duration=3600&os_sig=AAAA")
	f.Add("HEAD", "/", "os_sig=&os_kid=&os_duration=0")
	f.Add("GET", "/x", "OS_KID=relay&os_kid=relay&os_timestamp=%zz")
	dir := f.TempDir()
	if _, err := osauth.GenerateKey(dir, "relay"); err != nil {
		f.Fatal(err)
	}
	keys, _ := osauth.OpenKeyDir(dir, -1)
	v := osauth.NewVerifier(keys)
	f.Fuzz(func(t *testing.T, method, path, query string) {
		if err := v.VerifyPresigned(method, path, query, req); err == nil {
			t.Fatalf("accepted %s %s?%s without a signature from the key", method, path, query)
		}
		_ = osauth.CanonicalForm(method, path, query)
	})
}

func TestParseScopes(t *testing.T) {
	got, err := osauth.ParseScopes("org=42;project=*;x=(a)$!+'")
	want := []osauth.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "*"}, {Key: "x", Value: "(a)$!+'"}}
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("ParseScopes = %v, %v", got, err)
	}
	for _, bad := range []string{"org", "org=", "=1", "org=1;org=2", "org=4.2", "*=1", "org=1;;p=2"} {
		if _, err := osauth.ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
	if got, err := osauth.ParseScopes("_"); err != nil || got != nil {
		t.Errorf("ParseScopes(_) = %v, %v", got, err)
	}
	perms, err := osauth.ParsePermissions("read, object.delete,read")
	if err != nil || len(perms) != 2 || perms[0] != osauth.Read || perms[1] != osauth.Delete {
		t.Errorf("ParsePermissions = %v, %v", perms, err)
	}
	if _, err := osauth.ParsePermissions("read,admin"); err == nil {
		t.Error("ParsePermissions accepted admin")
	}
}

// TestVerifiedTokenReuse: a token verified once is remembered, and every
// later use is still checked for expiry, for the request's usecase, scopes
// and permission, and for its key being known and unchanged.
func TestVerifiedTokenReuse(t *testing.T) {
	f := newFixture(t)
	keys := osauth.KeySet{"relay": {Kid: "relay", Key: f.pub}}
	v := osauth.NewVerifier(keys, osauth.WithClock(func() time.Time { return f.now }))
	tok, err := f.signer.Token("testing", req.Scopes, []osauth.Permission{osauth.Read}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := v.VerifyToken(tok, req); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	for name, tc := range map[string]struct {
		req  osauth.Request
		want error
	}{
		"other usecase":    {osauth.Request{Usecase: "other", Scopes: req.Scopes, Permission: osauth.Read}, osauth.ErrForbidden},
		"other scope":      {osauth.Request{Usecase: "testing", Scopes: []osauth.Scope{{Key: "org", Value: "18"}}, Permission: osauth.Read}, osauth.ErrForbidden},
		"scope not named":  {osauth.Request{Usecase: "testing", Scopes: append(req.Scopes[:2:2], osauth.Scope{Key: "team", Value: "1"}), Permission: osauth.Read}, osauth.ErrForbidden},
		"write":            {osauth.Request{Usecase: "testing", Scopes: req.Scopes, Permission: osauth.Write}, osauth.ErrForbidden},
		"fewer scopes, ok": {osauth.Request{Usecase: "testing", Scopes: req.Scopes[:1], Permission: osauth.Read}, nil},
	} {
		if err := v.VerifyToken(tok, tc.req); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// The key's maximum permissions shrink: refused at once.
	keys["relay"] = &osauth.PublicKey{Kid: "relay", Key: f.pub, MaxPermissions: []osauth.Permission{osauth.Write}}
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrForbidden) {
		t.Errorf("after the key lost read: %v, want ErrForbidden", err)
	}
	// The key is removed, or replaced under the same kid: refused at once.
	delete(keys, "relay")
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Errorf("after the key was removed: %v, want ErrUnauthenticated", err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	keys["relay"] = &osauth.PublicKey{Kid: "relay", Key: other}
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Errorf("after the key was replaced: %v, want ErrUnauthenticated", err)
	}
	keys["relay"] = &osauth.PublicKey{Kid: "relay", Key: f.pub}
	if err := v.VerifyToken(tok, req); err != nil {
		t.Errorf("with the key back: %v", err)
	}
	// Expiry is checked on every use.
	f.now = f.now.Add(time.Minute - time.Nanosecond)
	if err := v.VerifyToken(tok, req); err != nil {
		t.Errorf("just before expiry: %v", err)
	}
	f.now = f.now.Add(time.Nanosecond)
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Errorf("at expiry: %v, want ErrUnauthenticated", err)
	}
	// A token not valid before a time is refused until then, remembered or not.
	nbf := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"res": map[string]string{"os:usecase": "testing"}, "permissions": []string{"object.read"},
		"exp": f.now.Add(time.Hour).Unix(), "nbf": f.now.Add(time.Minute).Unix(),
	})
	nbf.Header["kid"] = "relay"
	ns, err := nbf.SignedString(f.signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	r := osauth.Request{Usecase: "testing", Permission: osauth.Read}
	if err := v.VerifyToken(ns, r); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Errorf("before nbf: %v, want ErrUnauthenticated", err)
	}
	f.now = f.now.Add(time.Minute)
	if err := v.VerifyToken(ns, r); err != nil {
		t.Errorf("at nbf: %v", err)
	}
	f.now = f.now.Add(-time.Second) // a clock that went back
	if err := v.VerifyToken(ns, r); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Errorf("remembered token before nbf: %v, want ErrUnauthenticated", err)
	}
}

// BenchmarkVerifyToken: a token seen for the first time (signature checked,
// claims parsed) against one the Verifier has checked before.
func BenchmarkVerifyToken(b *testing.B) {
	f := newFixture(b)
	seq := 0 // every token different (exp has a resolution of a second)
	b.Run("first", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			seq++
			at := f.now.Add(time.Duration(seq) * time.Second)
			f.signer.Now = func() time.Time { return at }
			tok, err := f.signer.Token("testing", req.Scopes, []osauth.Permission{osauth.Read}, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = tok
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := f.v.VerifyToken(toks[i], req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		tok, err := f.signer.Token("testing", req.Scopes, []osauth.Permission{osauth.Read}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := f.v.VerifyToken(tok, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestKeyDirRemovalBesideBadFile: a file in the directory that does not parse
// loses only its own kid; a key removed beside it is refused at the next
// rescan, not kept because the rescan as a whole had an error.
func TestKeyDirRemovalBesideBadFile(t *testing.T) {
	f := newFixture(t)
	if _, err := osauth.GenerateKey(f.dir, "spare"); err != nil {
		t.Fatal(err)
	}
	keys, err := osauth.OpenKeyDir(f.dir, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	v := osauth.NewVerifier(keys, osauth.WithClock(func() time.Time { return f.now }))
	tok, _ := f.signer.Token("testing", req.Scopes, nil, time.Hour)
	if err := v.VerifyToken(tok, req); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "broken.pub"), []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.dir, "relay.pub")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Fatalf("token of a key removed beside an unparsable file: %v, want ErrUnauthenticated", err)
	}
	if err := keys.Err(); err == nil || !strings.Contains(err.Error(), "broken.pub") {
		t.Fatalf("Err = %v, want it to name broken.pub", err)
	}
	if _, ok := keys.PublicKey("spare"); !ok {
		t.Fatal("the key beside the unparsable file was dropped too")
	}
}

// TestKeyDirVanishes: when the key directory is removed, every kid is
// refused at the next rescan, and it comes back when the directory does.
func TestKeyDirVanishes(t *testing.T) {
	f := newFixture(t)
	keys, err := osauth.OpenKeyDir(f.dir, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	v := osauth.NewVerifier(keys, osauth.WithClock(func() time.Time { return f.now }))
	tok, _ := f.signer.Token("testing", req.Scopes, nil, time.Hour)
	if err := v.VerifyToken(tok, req); err != nil {
		t.Fatal(err)
	}
	aside := f.dir + ".aside"
	if err := os.Rename(f.dir, aside); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := v.VerifyToken(tok, req); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Fatalf("token after the key directory vanished: %v, want ErrUnauthenticated", err)
	}
	if err := keys.Err(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Err = %v, want the directory's absence", err)
	}
	if err := os.Rename(aside, f.dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := v.VerifyToken(tok, req); err != nil {
		t.Fatalf("token after the key directory came back: %v", err)
	}
}
