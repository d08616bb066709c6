package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/objectstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

func patch(t *testing.T, url, body string, hdr ...string) *http.Response {
	t.Helper()
	return do(t, "PATCH", url, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

func wantHeader(t *testing.T, r *http.Response, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("%s %s: %s %q, want %q", r.Request.Method, r.Request.URL.Path, name, got, want)
	}
}

// TestExpiryExtension: objectstore's PATCH, as its clients send it.
func TestExpiryExtension(t *testing.T) {
	ts, c := open(t)
	base := ts.URL + "/v1/objects/testing/org=1/"
	wantStatus(t, do(t, "PUT", base+"ttl", strings.NewReader("a"), "x-sn-expiration", "ttl:1h"), 200)
	wantStatus(t, do(t, "PUT", base+"tti", strings.NewReader("b"), "x-sn-expiration", "tti:40m"), 200)
	wantStatus(t, do(t, "PUT", base+"manual", strings.NewReader("c")), 200)
	c.add(10 * time.Minute) // 03:14:05

	// From now: the deadline moves, the TTL grows with it (reported from
	// the creation time), and the answer has no body.
	r := patch(t, base+"ttl", `{"extend_expiry":{"after":"2h","from":"now"}}`)
	wantStatus(t, r, 204)
	if b := readAll(t, r); b != "" {
		t.Errorf("204 with a body %q", b)
	}
	r = do(t, "HEAD", base+"ttl", nil)
	wantHeader(t, r, "x-sn-time-expires", "2026-01-02T05:14:05.000000Z")
	wantHeader(t, r, "x-sn-expiration", "ttl:2h 10m")
	// Never shortened: an earlier deadline is satisfied as it is.
	wantStatus(t, patch(t, base+"ttl", `{"extend_expiry":{"at":"2026-01-02T04:00:00Z"}}`), 204)
	wantHeader(t, do(t, "HEAD", base+"ttl", nil), "x-sn-time-expires", "2026-01-02T05:14:05.000000Z")
	// From creation, and an absolute time as Python's isoformat writes it.
	wantStatus(t, patch(t, base+"ttl", `{"extend_expiry":{"after":"3h","from":"creation"}}`), 204)
	wantHeader(t, do(t, "HEAD", base+"ttl", nil), "x-sn-time-expires", "2026-01-02T06:04:05.000000Z")
	wantStatus(t, patch(t, base+"ttl", `{"extend_expiry":{"at":"2026-01-02T07:00:00.5+00:00"}}`), 204)
	wantHeader(t, do(t, "HEAD", base+"ttl", nil), "x-sn-time-expires", "2026-01-02T07:00:00.500000Z")

	// Time-to-idle: the current deadline moves, the idle duration stays.
	wantStatus(t, patch(t, base+"tti", `{"extend_expiry":{"after":"2h","from":"now"}}`), 204)
	r = do(t, "HEAD", base+"tti", nil)
	wantHeader(t, r, "x-sn-time-expires", "2026-01-02T05:14:05.000000Z")
	wantHeader(t, r, "x-sn-expiration", "tti:40m")
	c.add(time.Hour) // 70 minutes idle, 50 before the extended deadline
	wantStatus(t, do(t, "GET", base+"tti", nil), 200)

	// A manual object cannot be extended (409, with objectstore's JSON
	// error); missing and expired objects are 404 without a body.
	r = patch(t, base+"manual", `{"extend_expiry":{"after":"1h","from":"now"}}`)
	wantStatus(t, r, 409)
	if b := readAll(t, r); !strings.Contains(b, `"detail"`) {
		t.Errorf("409 body %q: want a JSON error", b)
	}
	for _, k := range []string{"missing", "gone"} {
		if k == "gone" {
			wantStatus(t, do(t, "PUT", base+k, strings.NewReader("d"), "x-sn-expiration", "ttl:1m"), 200)
			c.add(2 * time.Minute)
		}
		r = patch(t, base+k, `{"extend_expiry":{"after":"1h","from":"now"}}`)
		wantStatus(t, r, 404)
		if b := readAll(t, r); b != "" {
			t.Errorf("404 for %s with a body %q", k, b)
		}
	}

	// Bodies that are not the extension.
	wantStatus(t, do(t, "PATCH", base+"ttl", strings.NewReader(`{"extend_expiry":{"after":"1h","from":"now"}}`)), 415)
	for body, code := range map[string]int{
		`{`:                                    400,
		`{"extend_expiry":{"at":"yesterday"}}`: 422,
		`{"extend_expiry":{"after":"2h"}}`:     422,
		`{"extend_expiry":{"after":"2h","from":"x"}}`:                  422,
		`{"extend_expiry":{"after":"soon","from":"now"}}`:              422,
		`{"extend_expiry":{"at":"2027-01-01T00:00:00Z","after":"2h"}}`: 422,
		`{"other":1}`: 422,
		`{}`:          422,
		`{"extend_expiry":{"after":"200y","from":"now"}}`: 422,
	} {
		if r := patch(t, base+"ttl", body); r.StatusCode != code {
			t.Errorf("PATCH %s: status %d, want %d", body, r.StatusCode, code)
		}
	}
	wantStatus(t, do(t, "PATCH", ts.URL+"/v1/objects/testing/org=1/", strings.NewReader(`{}`), "Content-Type", "application/json"), 400)

	// claimstash's backend sends its copy of the attributes along; the
	// server replaces that one metadata value and no other.
	wantStatus(t, do(t, "PUT", base+"copy", strings.NewReader("e"), "x-sn-expiration", "ttl:1h", "x-snme-claimstash", "old", "x-snme-color", "red"), 200)
	wantStatus(t, patch(t, base+"copy", `{"extend_expiry":{"after":"2h","from":"now"}}`, "x-snme-claimstash", "new", "x-snme-color", "blue"), 204)
	r = do(t, "HEAD", base+"copy", nil)
	wantHeader(t, r, "x-snme-claimstash", "new")
	wantHeader(t, r, "x-snme-color", "red")
}

// TestExpiryExtensionNeedsWrite: PATCH is a write (objectstore's
// extend_expiry needs object.write).
func TestExpiryExtensionNeedsWrite(t *testing.T) {
	f := openAuth(t)
	u := f.ts.URL + "/v1/objects/testing/org=42;project=7/k"
	all := f.token(t, scopes, nil)
	wantStatus(t, do(t, "PUT", u, strings.NewReader("x"), "x-os-auth", "Bearer "+all, "x-sn-expiration", "ttl:1h"), 200)
	body := `{"extend_expiry":{"after":"2h","from":"now"}}`
	read := f.token(t, scopes, []osauth.Permission{osauth.Read, osauth.Delete})
	wantStatus(t, patch(t, u, body, "x-os-auth", "Bearer "+read), 403)
	write := f.token(t, scopes, []osauth.Permission{osauth.Write})
	wantStatus(t, patch(t, u, body, "x-os-auth", "Bearer "+write), 204)
}

// objectEngine is an Engine over objectstash against the handler h in
// front of a server over a file store, without auth, at real time.
func objectEngine(t *testing.T, wrap func(http.Handler) http.Handler, opts ...stash.Option) (*stash.Engine, driver.Driver) {
	t.Helper()
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	d, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackend(d), stash.WithInlineMax(-1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, d
}

// TestObjectstashExtends: a repeated Create extends the stash's expiry
// through the service, and Stat reports the extension exactly.
func TestObjectstashExtends(t *testing.T) {
	e, _ := objectEngine(t, nil)
	ctx := context.Background()
	payload := stashtest.RandomPayload(5000, 1)
	first, err := e.Create(ctx, "extend", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Create(ctx, "extend", payload, stash.TTL(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.ExpiresAt.After(first.ExpiresAt.Add(time.Hour)) {
		t.Fatalf("second Create reports %v, first %v: not extended", again.ExpiresAt, first.ExpiresAt)
	}
	st, err := e.Stat(ctx, first.String())
	if err != nil {
		t.Fatal(err)
	}
	if !st.ExpiresAt.Equal(again.ExpiresAt) {
		t.Fatalf("Stat reports %v, the extending Create %v", st.ExpiresAt, again.ExpiresAt)
	}
}

// TestObjectstashConcurrentExtends: concurrent Creates of one payload with
// different TTLs; the service's extension never shortens, so the stash
// ends up with the latest expiry any of them was told (to the
// microsecond the service reports times in).
func TestObjectstashConcurrentExtends(t *testing.T) {
	e, _ := objectEngine(t, nil)
	ctx := context.Background()
	payload := stashtest.RandomPayload(5000, 2)
	first, err := e.Create(ctx, "race", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	told := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.Create(ctx, "race", payload, stash.TTL(time.Duration(2+i)*time.Hour))
			if errs[i] = err; err == nil {
				told[i] = s.ExpiresAt
			}
		}()
	}
	wg.Wait()
	var latest time.Time
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Create %d: %v", i, errs[i])
		}
		if told[i].After(latest) {
			latest = told[i]
		}
	}
	st, err := e.Stat(ctx, first.String())
	if err != nil {
		t.Fatal(err)
	}
	if st.ExpiresAt.Before(latest.Truncate(time.Microsecond)) {
		t.Fatalf("Creates were told the stash lives until %v; it is stored until %v", latest, st.ExpiresAt)
	}
}

// TestObjectstashOldServer: a service without the expiry extension (an
// objectstore release before it answers PATCH 405) makes UpdateAttributes
// ErrUnsupported; a repeated Create still succeeds, keeps the expiry the
// stash has, and says so in the log.
func TestObjectstashOldServer(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	e, d := objectEngine(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				w.Header().Set("Allow", "GET,HEAD,PUT,DELETE")
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			h.ServeHTTP(w, r)
		})
	}, stash.WithLogger(logger))
	ctx := context.Background()
	payload := stashtest.RandomPayload(5000, 3)
	first, err := e.Create(ctx, "old", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	err = d.(driver.Updater).UpdateAttributes(ctx, first.Address.Namespace, first.Address.Key(), &driver.Attributes{ExpiresAt: time.Now().Add(2 * time.Hour)})
	if !errors.Is(err, driver.ErrUnsupported) {
		t.Fatalf("UpdateAttributes against a server without PATCH: %v, want ErrUnsupported", err)
	}
	again, err := e.Create(ctx, "old", payload, stash.TTL(3*time.Hour))
	if err != nil {
		t.Fatalf("repeated Create against a server without PATCH: %v", err)
	}
	if !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("repeated Create reports %v, want the kept %v", again.ExpiresAt, first.ExpiresAt)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "cannot extend the expiry") {
		t.Errorf("nothing logged: %q", logged.String())
	}
}

// TestObjectstashServerIgnoresCopy: objectstore's own server extends the
// deadline but ignores x-snme-claimstash on a PATCH; the backend then
// reports the deadline the service keeps.
func TestObjectstashServerIgnoresCopy(t *testing.T) {
	e, _ := objectEngine(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				r.Header.Del("x-snme-claimstash")
			}
			h.ServeHTTP(w, r)
		})
	})
	ctx := context.Background()
	payload := stashtest.RandomPayload(5000, 4)
	first, err := e.Create(ctx, "sentry", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Create(ctx, "sentry", payload, stash.TTL(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Stat(ctx, first.String())
	if err != nil {
		t.Fatal(err)
	}
	if d := again.ExpiresAt.Sub(st.ExpiresAt); d < 0 || d > time.Microsecond {
		t.Fatalf("Stat reports %v, the extending Create %v", st.ExpiresAt, again.ExpiresAt)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestObjectstashSweepPassesOver: objectstore has no listing, so Sweep
// deletes nothing through it, says so in the log, and the expired stash
// reads as expired all the same.
func TestObjectstashSweepPassesOver(t *testing.T) {
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	e, _ := objectEngine(t, nil, stash.WithLogger(logger))
	ctx := context.Background()
	s, err := e.Create(ctx, "short", stashtest.RandomPayload(5000, 5), stash.TTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if n, err := e.Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("Sweep: %d, %v; want 0, nil", n, err)
	}
	if _, err := e.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrExpired) && !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Retrieve of an expired stash: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "cannot list its contents") || !strings.Contains(logged.String(), "scheme=objectstore") {
		t.Errorf("Sweep did not say it passed over the backend: %q", logged.String())
	}
}

// TestObjectstashReader: a consumer whose token may only read records no
// access (the service does that itself, 403 to its PATCH), and says nothing
// about it above debug: its reads succeed quietly.
func TestObjectstashReader(t *testing.T) {
	f := openAuth(t)
	writer, err := objectstash.New(f.ts.URL, objectstash.WithSigner(f.signer))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := objectstash.New(f.ts.URL, objectstash.WithToken(f.token(t, scopes, []osauth.Permission{osauth.Read})))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := stash.New(stash.WithBackend(writer), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	payload := stashtest.RandomPayload(5000, 6)
	s, err := w.Create(ctx, "idle", payload, stash.TTI(time.Hour), stash.InNamespace("testing"),
		stash.InScopes(stash.Scope{Key: "org", Value: "42"}, stash.Scope{Key: "project", Value: "7"}))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	later := func() time.Time { return time.Now().Add(20 * time.Minute) } // past a tenth of the TTI
	r, err := stash.New(stash.WithBackend(reader), stash.WithInlineMax(-1), stash.WithLogger(logger), stash.WithClock(later))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 2 {
		got, err := r.Retrieve(ctx, s.String())
		if err != nil || !bytes.Equal(got.Data, payload) {
			t.Fatalf("Retrieve with a read-only token: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "recording access time") {
		t.Errorf("reads with a read-only token logged:\n%s", logged.String())
	}
}

// extendingStore runs a hook between reading an object for a GET and
// the server recording that read, the window in which an extension can
// land.
type extendingStore struct {
	*filestash.Store
	hook func()
}

func (s *extendingStore) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := s.Store.Get(ctx, ns, key)
	if s.hook != nil {
		h := s.hook
		s.hook = nil
		h()
	}
	return rc, a, err
}

// TestReadKeepsExtension: a read that records its access for time-to-idle
// never undoes an extension made after it read the object.
func TestReadKeepsExtension(t *testing.T) {
	st := &extendingStore{Store: newStore(t)}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := service.New(st, service.WithoutAuth(), service.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	u := ts.URL + "/v1/objects/testing/_/idle"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("x"), "x-sn-expiration", "tti:40m"), 200)
	c.add(20 * time.Minute) // a read now records its access
	st.hook = func() {
		wantStatus(t, patch(t, u, `{"extend_expiry":{"after":"5h","from":"now"}}`), 204)
	}
	wantStatus(t, do(t, "GET", u, nil), 200)
	wantHeader(t, do(t, "HEAD", u, nil), "x-sn-time-expires", "2026-01-02T08:24:05.000000Z")
}
