package service_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
)

// authFixture is a server with auth on over a fresh file store, on a
// loopback socket, and the key pair (kid "relay") it trusts.
type authFixture struct {
	ts     *httptest.Server
	files  osauth.KeyFiles
	signer *osauth.Signer
	pubPEM []byte
}

func openAuth(t *testing.T) *authFixture {
	t.Helper()
	dir := t.TempDir()
	files, err := osauth.GenerateKey(dir, "relay")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := osauth.NewSigner("relay", files.Private)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := osauth.OpenKeyDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.New(newStore(t), service.WithAuth(osauth.NewVerifier(keys)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	pem, _ := os.ReadFile(filepath.Join(dir, "relay.pub"))
	return &authFixture{ts: ts, files: files, signer: signer, pubPEM: pem}
}

var scopes = []osauth.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "7"}}

func (f *authFixture) token(t *testing.T, sc []osauth.Scope, perms []osauth.Permission) string {
	t.Helper()
	tok, err := f.signer.Token("testing", sc, perms, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func rawToken(t *testing.T, m jwt.SigningMethod, key any, kid string, exp time.Time) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, jwt.MapClaims{
		"res":         map[string]string{"os:usecase": "testing", "org": "42", "project": "7"},
		"permissions": []string{"object.read", "object.write", "object.delete"},
		"exp":         exp.Unix(),
	})
	tk.Header["kid"] = kid
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuthMatrix runs every route with every kind of bad token, and a good
// one as the control.
func TestAuthMatrix(t *testing.T) {
	f := openAuth(t)
	all := []osauth.Permission{osauth.Read, osauth.Write, osauth.Delete}
	good := f.token(t, scopes, all)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	base := f.ts.URL + "/v1/objects/testing/org=42;project=7/"
	extend := `{"extend_expiry":{"after":"2h","from":"now"}}`
	routes := []struct {
		method, url string
		perm        osauth.Permission
		ok          int
		body        string
		hdr         []string
	}{
		{"PUT", base + "k", osauth.Write, 200, "payload", []string{"x-sn-expiration", "ttl:1h"}},
		{"POST", base, osauth.Write, 201, "payload", nil},
		{"GET", base + "k", osauth.Read, 200, "", nil},
		{"HEAD", base + "k", osauth.Read, 204, "", nil},
		{"PATCH", base + "k", osauth.Write, 204, extend, []string{"Content-Type", "application/json"}},
		{"DELETE", base + "k", osauth.Delete, 204, "", nil},
	}
	// objectstore's multipart uploads, over an upload made with the good
	// token. Its complete names an etag no part has: 200 with an error
	// body, and the upload stays for the abort, the last route.
	mp := f.ts.URL + "/v1/objects:multipart/testing/org=42;project=7/"
	r := do(t, "PUT", mp+"big", nil, "x-os-auth", "Bearer "+good)
	wantStatus(t, r, 200)
	var up struct {
		UploadID string `json:"upload_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&up); err != nil || up.UploadID == "" {
		t.Fatalf("initiate: %+v %v", up, err)
	}
	id := "big?upload_id=" + up.UploadID
	parts := f.ts.URL + "/v1/objects:multipart:parts/testing/org=42;project=7/" + id
	complete := f.ts.URL + "/v1/objects:multipart:complete/testing/org=42;project=7/" + id
	routes = append(routes, []struct {
		method, url string
		perm        osauth.Permission
		ok          int
		body        string
		hdr         []string
	}{
		{"POST", mp, osauth.Write, 200, "", nil},
		{"PUT", mp + "big", osauth.Write, 200, "", nil},
		{"PUT", parts + "&part_number=1", osauth.Write, 200, "a part", nil},
		{"GET", parts, osauth.Read, 200, "", nil},
		{"POST", complete, osauth.Write, 200, `{"parts":[{"part_number":1,"etag":"x"}]}`, []string{"Content-Type", "application/json"}},
		{"DELETE", mp + id, osauth.Delete, 204, "", nil},
	}...)
	for _, rt := range routes {
		var others []osauth.Permission
		for _, p := range all {
			if p != rt.perm {
				others = append(others, p)
			}
		}
		cases := []struct {
			name, header string
			want         int
		}{
			{"missing", "", 400},
			{"malformed", "Bearer not-a-token", 401},
			{"not bearer", "Basic dXNlcjpwYXNz", 401},
			{"expired", "Bearer " + rawToken(t, jwt.SigningMethodEdDSA, f.signer.Key, "relay", time.Now().Add(-time.Minute)), 401},
			{"unknown kid", "Bearer " + rawToken(t, jwt.SigningMethodEdDSA, f.signer.Key, "nobody", time.Now().Add(time.Minute)), 401},
			{"other key", "Bearer " + rawToken(t, jwt.SigningMethodEdDSA, otherKey, "relay", time.Now().Add(time.Minute)), 401},
			{"alg none", "Bearer " + rawToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "relay", time.Now().Add(time.Minute)), 401},
			{"HS256 with the public key", "Bearer " + rawToken(t, jwt.SigningMethodHS256, f.pubPEM, "relay", time.Now().Add(time.Minute)), 401},
			{"wrong scope", "Bearer " + f.token(t, []osauth.Scope{{Key: "org", Value: "43"}, {Key: "project", Value: "7"}}, all), 403},
			{"wrong permission", "Bearer " + f.token(t, scopes, others), 403},
			{"good", "Bearer " + good, rt.ok},
		}
		for _, tc := range cases {
			hdr := append([]string(nil), rt.hdr...)
			if tc.header != "" {
				hdr = append(hdr, "x-os-auth", tc.header)
			}
			r := do(t, rt.method, rt.url, strings.NewReader(rt.body), hdr...)
			if r.StatusCode != tc.want {
				t.Errorf("%s %s with %s token: status %d, want %d", rt.method, rt.url, tc.name, r.StatusCode, tc.want)
			}
		}
	}
	// The other two places a token may come from.
	wantStatus(t, do(t, "PUT", base+"k", strings.NewReader("x"), "Authorization", "Bearer "+good), 200)
	wantStatus(t, do(t, "GET", base+"k?os_auth="+good, nil), 200)
	// A token for org=42 covers nothing outside it; one for a parent scope
	// covers no sibling.
	parent := f.token(t, scopes[:1], all)
	wantStatus(t, do(t, "GET", base+"k", nil, "x-os-auth", "Bearer "+parent), 403)
	wantStatus(t, do(t, "GET", f.ts.URL+"/v1/objects/testing/org=42/k", nil, "x-os-auth", "Bearer "+good), 404)
}

func TestPresignedOverHTTP(t *testing.T) {
	f := openAuth(t)
	u := f.ts.URL + "/v1/objects/testing/org=42;project=7/a/b"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("signed"), "x-os-auth", "Bearer "+f.token(t, scopes, nil)), 200)
	signed, err := f.signer.Presign("GET", u, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.Get(signed)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	wantStatus(t, r, 200)
	if got := readAll(t, r); got != "signed" {
		t.Fatalf("presigned GET = %q", got)
	}
	wantStatus(t, do(t, "HEAD", signed, nil), 204)
	wantStatus(t, do(t, "PUT", signed, strings.NewReader("x")), 401)
	wantStatus(t, do(t, "DELETE", signed, nil), 401)
	wantStatus(t, do(t, "GET", strings.Replace(signed, "/a/b", "/a/c", 1), nil), 401)
}

// TestConfinement: nothing in a path reaches another usecase, scope or key.
func TestConfinement(t *testing.T) {
	ts, _ := open(t)
	base := ts.URL + "/v1/objects/"
	put := func(path, body string) int {
		return do(t, "PUT", base+path, strings.NewReader(body)).StatusCode
	}
	get := func(path string) (int, string) {
		r := do(t, "GET", base+path, nil)
		return r.StatusCode, readAll(t, r)
	}
	if c := put("testing/org=1/secret", "one"); c != 200 {
		t.Fatalf("PUT: %d", c)
	}
	for _, p := range []string{
		"testing/org=1/../org=2/x",
		"testing/org=1/a/./b",
		"testing/org=1/a//b",
		"testing/org=1/a%2F..%2Fsecret",
		"testing/org=1%2Fx/k",
		"testing/org=1%3Bproject=2/k",
		"testing/org=1;project=2=3/k",
		"testing/org=1%3Dx/k",
		"testing/org=../k",
		"..%2Ftesting/org=1/secret",
		"testing/../testing/org=1/secret",
		"testing/org=1/%00",
		"testing/org=1/secret/",
	} {
		if c := put(p, "evil"); c != 400 {
			t.Errorf("PUT %s: status %d, want 400", p, c)
		}
	}
	if c, body := get("testing/org=1/secret"); c != 200 || body != "one" {
		t.Fatalf("secret now %d %q", c, body)
	}
	// Keys that look alike stay apart, and the reserved hashed form of a key
	// is an object of its own.
	h := sha256.Sum256([]byte("secret"))
	for _, p := range []string{"testing/org=1/_os." + hex.EncodeToString(h[:]), "testing/org=1/Secret", "Testing/org=1/secret", "testing/org=01/secret", "testing/_/secret", "testing/osh=1/secret"} {
		if c, _ := get(p); c != 404 {
			t.Errorf("GET %s: status %d, want 404", p, c)
		}
	}
	// An encoded slash in a key is that key.
	if c := put("testing/_/dir%2Ffile", "slash"); c != 200 {
		t.Fatalf("PUT encoded slash: %d", c)
	}
	if c, body := get("testing/_/dir/file"); c != 200 || body != "slash" {
		t.Fatalf("GET dir/file: %d %q", c, body)
	}
	// Scope values outside the stash grammar and long scope lists work.
	for _, p := range []string{"testing/org=(a)$!+'/k", "testing/a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8;i=9/k", "UPPER_case/_/k"} {
		if c := put(p, p); c != 200 {
			t.Fatalf("PUT %s: %d", p, c)
		}
		if c, body := get(p); c != 200 || body != p {
			t.Fatalf("GET %s: %d %q", p, c, body)
		}
	}
}

// TestBatchAuthMatrix: the batch route with every kind of token. A token
// that fails every operation alike fails the request; one that is authentic
// but does not allow an operation fails that operation.
func TestBatchAuthMatrix(t *testing.T) {
	f := openAuth(t)
	all := []osauth.Permission{osauth.Read, osauth.Write, osauth.Delete}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	u := f.ts.URL + "/v1/objects:batch/testing/org=42;project=7/"
	ops := []op{{kind: "insert", key: "k", body: []byte("x")}}
	for _, tc := range []struct {
		name, header string
		status       int
		opStatus     string
	}{
		{"missing", "", 400, ""},
		{"malformed", "Bearer not-a-token", 401, ""},
		{"expired", "Bearer " + rawToken(t, jwt.SigningMethodEdDSA, f.signer.Key, "relay", time.Now().Add(-time.Minute)), 401, ""},
		{"unknown kid", "Bearer " + rawToken(t, jwt.SigningMethodEdDSA, f.signer.Key, "nobody", time.Now().Add(time.Minute)), 401, ""},
		{"other key", "Bearer " + rawToken(t, jwt.SigningMethodEdDSA, otherKey, "relay", time.Now().Add(time.Minute)), 401, ""},
		{"alg none", "Bearer " + rawToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "relay", time.Now().Add(time.Minute)), 401, ""},
		{"HS256 with the public key", "Bearer " + rawToken(t, jwt.SigningMethodHS256, f.pubPEM, "relay", time.Now().Add(time.Minute)), 401, ""},
		{"wrong scope", "Bearer " + f.token(t, []osauth.Scope{{Key: "org", Value: "43"}, {Key: "project", Value: "7"}}, all), 200, "403"},
		{"wrong permission", "Bearer " + f.token(t, scopes, []osauth.Permission{osauth.Read, osauth.Delete}), 200, "403"},
		{"good", "Bearer " + f.token(t, scopes, all), 200, "201"},
	} {
		var hdr []string
		if tc.header != "" {
			hdr = []string{"x-os-auth", tc.header}
		}
		r, res := batch(t, u, ops, hdr...)
		if r.StatusCode != tc.status {
			t.Errorf("batch with %s token: status %d, want %d", tc.name, r.StatusCode, tc.status)
			continue
		}
		if tc.opStatus != "" && (len(res) != 1 || res[0].status != tc.opStatus) {
			t.Errorf("batch with %s token: results %+v, want one with status %s", tc.name, res, tc.opStatus)
		}
	}
}
