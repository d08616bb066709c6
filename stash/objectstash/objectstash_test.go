package objectstash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// The conformance suite runs against claimstash's server in package service
// (TestObjectstashConformance), so that nothing under stash/ imports the
// service. These are the edges a fake server shows best.

const key = "org=42/report.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "HEAD":
			w.WriteHeader(404)
		case "PUT":
			got = r
			body, _ = io.ReadAll(r.Body)
			w.Write([]byte(`{"key":"x"}`))
		}
	}))
	defer ts.Close()
	s, err := objectstash.New(ts.URL+"/base/", objectstash.WithToken("static-token"))
	if err != nil {
		t.Fatal(err)
	}
	a := &driver.Attributes{Size: 100, StoredSize: 5, Encoding: driver.EncodingZstd, ContentType: "application/json",
		Origin: "svc ü", Metadata: map[string]string{"Tenant": "acme", "bad key": "x"}, TTI: 90 * time.Second}
	if err := s.Put(context.Background(), "attachments", key, strings.NewReader("zzzzz"), 5, a); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"X-Os-Auth": "Bearer static-token", "Content-Encoding": "zstd", "Content-Type": "application/json",
		"X-Sn-Expiration": "tti:90s", "X-Sn-Origin": "svc %C3%BC", "X-Snme-Tenant": "acme", "X-Snme-Claimstash-Size": "100",
	} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if got.Header.Get("X-Snme-Claimstash") == "" {
		t.Error("no attribute header")
	}
	if got.URL.EscapedPath() != "/base/v1/objects/attachments/org=42/report.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" || got.ContentLength != 5 || string(body) != "zzzzz" {
		t.Errorf("PUT %s (%d bytes): %q", got.URL.EscapedPath(), got.ContentLength, body)
	}
}

func TestExistingIsNotReplaced(t *testing.T) {
	puts := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			puts++
		}
		w.Header().Set("x-sn-size", "1")
		w.WriteHeader(204)
	}))
	defer ts.Close()
	s, _ := objectstash.New(ts.URL)
	err := s.Put(context.Background(), "ns1", key, strings.NewReader("x"), 1, &driver.Attributes{Size: 1, StoredSize: 1})
	if !errors.Is(err, driver.ErrExists) || puts != 0 {
		t.Fatalf("Put over an existing object: %v after %d PUTs", err, puts)
	}
}

func TestReadTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer ts.Close()
	defer close(release)
	s, _ := objectstash.New(ts.URL, objectstash.WithReadTimeout(100*time.Millisecond))
	start := time.Now()
	_, err := s.Stat(context.Background(), "ns1", key)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Stat of a server that never answers: %v after %v", err, time.Since(start))
	}
}

func TestConnectRetriesGiveUp(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close() // nothing listens there now
	s, _ := objectstash.New(addr, objectstash.WithConnectRetries(3))
	if _, err := s.Stat(context.Background(), "ns1", key); err == nil || errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat with nothing listening: %v, want a connection error", err)
	}
}

func TestStatusErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(403)
		w.Write([]byte(`{"detail":"osauth: not permitted: token does not cover scope org=42","causes":[]}`))
	}))
	defer ts.Close()
	s, _ := objectstash.New(ts.URL)
	_, _, err := s.Get(context.Background(), "ns1", key)
	var se *objectstash.StatusError
	if !errors.As(err, &se) || se.Status != 403 || !strings.Contains(err.Error(), "does not cover scope") {
		t.Fatalf("Get refused: %v", err)
	}
	if _, _, err := s.Get(context.Background(), "ns1", "org=4.2/x.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); !errors.Is(err, driver.ErrInvalidAddress) {
		t.Fatalf("scope value with a dot: %v, want ErrInvalidAddress", err)
	}
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	files, err := osauth.GenerateKey(dir, "relay")
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("tok\n"), 0o600)
	for _, ok := range []string{
		"objectstore://127.0.0.1:1/?plaintext=true",
		"objectstore://host/base?kid=relay&key_file=" + url.QueryEscape(files.Private) + "&token_lifetime=30s",
		"objectstore://host?token_file=" + url.QueryEscape(tokFile) + "&connect_timeout=200ms&retries=1&read_timeout=5s&part_size=1048576&parallel_above=4194304&concurrency=2",
	} {
		u, _ := url.Parse(ok)
		if _, err := objectstash.OpenURL(context.Background(), u); err != nil {
			t.Errorf("OpenURL(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"objectstore:///nohost", "objectstore://host?colour=blue", "objectstore://host?kid=relay",
		"objectstore://host?retries=-1", "objectstore://host?plaintext=maybe", "file://host",
		"objectstore://host?kid=relay&key_file=" + url.QueryEscape(files.Public),
	} {
		u, _ := url.Parse(bad)
		if _, err := objectstash.OpenURL(context.Background(), u); err == nil {
			t.Errorf("OpenURL(%s) accepted", bad)
		}
	}
}

func TestSignURL(t *testing.T) {
	dir := t.TempDir()
	files, _ := osauth.GenerateKey(dir, "relay")
	signer, _ := osauth.NewSigner("relay", files.Private)
	s, _ := objectstash.New("http://127.0.0.1:1", objectstash.WithSigner(signer))
	unscoped := "report.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	u, err := s.SignURL(context.Background(), driver.LinkRequest{Scheme: objectstash.Scheme, Namespace: "ns1", Key: unscoped, Expires: time.Now().Add(time.Hour)})
	if err != nil || !strings.Contains(u, "/v1/objects/ns1/_/"+unscoped+"?os_kid=relay&") || !strings.Contains(u, "&os_sig=") {
		t.Fatalf("SignURL = %q, %v", u, err)
	}
	plain, _ := objectstash.New("http://127.0.0.1:1")
	if _, err := plain.SignURL(context.Background(), driver.LinkRequest{Namespace: "ns1", Key: unscoped, Expires: time.Now().Add(time.Hour)}); !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("SignURL without a key: %v, want ErrUnsupported", err)
	}
	// A scoped stash: the scopes in objectstore's path form, before the key.
	u, err = s.SignURL(context.Background(), driver.LinkRequest{Scheme: objectstash.Scheme, Namespace: "ns1", Key: "org=42/project=7/" + unscoped, Expires: time.Now().Add(time.Hour)})
	if err != nil || !strings.Contains(u, "/v1/objects/ns1/org=42;project=7/"+unscoped+"?os_kid=relay&") || !strings.Contains(u, "&os_sig=") {
		t.Fatalf("SignURL of a scoped stash = %q, %v", u, err)
	}
	if _, err := s.SignURL(context.Background(), driver.LinkRequest{Namespace: "ns1", Key: "org=4.2/" + unscoped, Expires: time.Now().Add(time.Hour)}); !errors.Is(err, driver.ErrInvalidAddress) {
		t.Fatalf("SignURL of a scope value with a dot: %v, want ErrInvalidAddress", err)
	}
	if _, err := plain.SignURL(context.Background(), driver.LinkRequest{Namespace: "ns1", Key: key, Expires: time.Now().Add(time.Hour)}); !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("SignURL of a scoped stash without a key: %v, want ErrUnsupported", err)
	}
}

// TestUpdateAttributesRequest: the expiry extension is objectstore's PATCH,
// with the deadline and the attribute copy; the answers a service gives
// when it cannot extend are ErrUnsupported, a missing object ErrNotFound.
func TestUpdateAttributesRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	code := http.StatusNoContent
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code >= 400 {
			w.Write([]byte(`{"detail":"expiry extension could not be satisfied"}`))
		}
	}))
	defer ts.Close()
	s, _ := objectstash.New(ts.URL, objectstash.WithToken("tok"))
	ctx := context.Background()
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := s.UpdateAttributes(ctx, "attachments", key, &driver.Attributes{ExpiresAt: at}); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PATCH" || got.URL.Path != "/v1/objects/attachments/org=42/"+key[len("org=42/"):] ||
		got.Header.Get("Content-Type") != "application/json" || got.Header.Get("X-Snme-Claimstash") == "" ||
		string(body) != `{"extend_expiry":{"at":"2030-01-02T03:04:05.123456789Z"}}` {
		t.Fatalf("%s %s %v: %s", got.Method, got.URL.Path, got.Header, body)
	}
	// A time-to-idle object's deadline is its last access plus the TTI.
	if err := s.UpdateAttributes(ctx, "attachments", key, &driver.Attributes{ExpiresAt: at, TTI: time.Hour, LastAccess: at.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"extend_expiry":{"at":"2030-01-02T02:04:05.123456789Z"}}` {
		t.Fatalf("TTI extension %s", body)
	}
	// Nothing to extend: no request.
	got = nil
	if err := s.UpdateAttributes(ctx, "attachments", key, &driver.Attributes{}); err != nil || got != nil {
		t.Fatalf("UpdateAttributes without an expiry: %v, request %v", err, got)
	}
	for _, c := range []int{405, 501, 409, 400, 403} {
		code = c
		err := s.UpdateAttributes(ctx, "attachments", key, &driver.Attributes{ExpiresAt: at})
		if !errors.Is(err, driver.ErrUnsupported) || !strings.Contains(err.Error(), "could not be satisfied") {
			t.Errorf("answer %d: %v, want ErrUnsupported with the detail", c, err)
		}
	}
	code = 404
	if err := s.UpdateAttributes(ctx, "attachments", key, &driver.Attributes{ExpiresAt: at}); !errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrUnsupported) {
		t.Errorf("answer 404: %v, want ErrNotFound", err)
	}
}

// TestTokenReuse: a signed token is reused only by requests for the same
// usecase, scopes and permission, and only for a quarter of its lifetime;
// every token still grants only its request's permission and scopes.
func TestTokenReuse(t *testing.T) {
	dir := t.TempDir()
	files, _ := osauth.GenerateKey(dir, "relay")
	signer, _ := osauth.NewSigner("relay", files.Private)
	now := time.Unix(1_800_000_000, 0)
	signer.Now = func() time.Time { return now }
	kd, err := osauth.OpenKeyDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := osauth.NewVerifier(kd, osauth.WithClock(func() time.Time { return now }))
	var seen []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get(osauth.HeaderAuth))
		w.WriteHeader(404)
	}))
	defer ts.Close()
	s, _ := objectstash.New(ts.URL, objectstash.WithSigner(signer), objectstash.WithTokenLifetime(time.Minute))
	ctx := context.Background()
	stat := func(ns, key string) string {
		t.Helper()
		if _, err := s.Stat(ctx, ns, key); !errors.Is(err, driver.ErrNotFound) {
			t.Fatalf("Stat: %v", err)
		}
		return seen[len(seen)-1]
	}
	t0 := now
	first := stat("ns1", key)
	now = now.Add(time.Second) // a fresh signature would differ now (exp)
	if again := stat("ns1", "org=42/other.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); again != first {
		t.Error("a second read in the same usecase and scopes signed a new token")
	}
	for _, other := range []struct{ ns, key string }{
		{"ns2", key}, {"ns1", "org=43/report.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"ns1", "report.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"ns1", "org=42/team=1/report.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	} {
		if tok := stat(other.ns, other.key); tok == first {
			t.Errorf("%s %s reused the token of ns1 org=42", other.ns, other.key)
		}
	}
	// A delete asks first (HEAD, read), then would DELETE: the read token
	// is never sent for a write or a delete.
	_ = s.Put(ctx, "ns1", key, strings.NewReader("x"), 1, &driver.Attributes{Size: 1, StoredSize: 1})
	put := seen[len(seen)-1]
	if put == first {
		t.Fatal("a PUT reused a read token")
	}
	tokenOf := func(h string) string { return strings.TrimPrefix(h, "Bearer ") }
	if err := v.VerifyToken(tokenOf(put), osauth.Request{Usecase: "ns1", Scopes: []osauth.Scope{{Key: "org", Value: "42"}}, Permission: osauth.Read}); !errors.Is(err, osauth.ErrForbidden) {
		t.Errorf("the PUT's token grants reads: %v", err)
	}
	if err := v.VerifyToken(tokenOf(first), osauth.Request{Usecase: "ns1", Scopes: []osauth.Scope{{Key: "org", Value: "42"}}, Permission: osauth.Write}); !errors.Is(err, osauth.ErrForbidden) {
		t.Errorf("the read token grants writes: %v", err)
	}
	// Just before a quarter of the lifetime the token is still reused;
	// from then on a new one is signed, and the old one still expires.
	now = t0.Add(15*time.Second - time.Nanosecond)
	if stat("ns1", key) != first {
		t.Error("token renewed before a quarter of its lifetime")
	}
	now = t0.Add(15 * time.Second)
	renewed := stat("ns1", key)
	if renewed == first {
		t.Error("token reused after a quarter of its lifetime")
	}
	if err := v.VerifyToken(tokenOf(renewed), osauth.Request{Usecase: "ns1", Scopes: []osauth.Scope{{Key: "org", Value: "42"}}, Permission: osauth.Read}); err != nil {
		t.Errorf("renewed token: %v", err)
	}
	now = t0.Add(time.Minute)
	if err := v.VerifyToken(tokenOf(first), osauth.Request{Usecase: "ns1", Scopes: []osauth.Scope{{Key: "org", Value: "42"}}, Permission: osauth.Read}); !errors.Is(err, osauth.ErrUnauthenticated) {
		t.Errorf("first token after its lifetime: %v, want it expired", err)
	}
	// A clock that goes back never reuses a token signed in its future.
	now = now.Add(-time.Hour)
	if stat("ns1", key) == renewed {
		t.Error("a token signed later was reused after the clock went back")
	}
}
