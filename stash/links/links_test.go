package links_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
	"github.com/klauspost/compress/zstd"
)

func key(id string, b byte) links.Key {
	return links.Key{ID: id, Secret: bytes.Repeat([]byte{b}, 32)}
}

// fetcher trusts origins, with client (the test server's, for its TLS
// certificate) and the clock.
func fetcher(t testing.TB, clk *stashtest.Clock, client *http.Client, opts ...links.FetcherOption) *links.Fetcher {
	t.Helper()
	if client != nil {
		opts = append(opts, links.WithHTTPClient(client))
	}
	if clk != nil {
		opts = append(opts, links.WithClock(clk.Now))
	}
	f, err := links.NewFetcher(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// trusting is an engine with no backend whose fetcher trusts origins.
func trusting(t testing.TB, origins []string, opts ...stash.Option) *stash.Engine {
	t.Helper()
	e, err := stash.New(append([]stash.Option{stash.WithLinkFetcher(fetcher(t, nil, nil, links.TrustOrigins(origins...)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// shareServer is a real TLS server on loopback whose handler can be
// swapped, so engines with different keys can serve the same store.
type shareServer struct {
	srv   *httptest.Server
	store *memstash.Store
	clock *stashtest.Clock
	mu    sync.Mutex
	h     http.Handler
	hits  atomic.Int64
}

func newShareServer(t *testing.T) *shareServer {
	t.Helper()
	s := &shareServer{store: memstash.New(), clock: stashtest.NewClock(time.Now())}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		h := s.h
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// engine builds a serving engine over the shared store with keys, and
// makes its handler the one the server runs.
func (s *shareServer) engine(t *testing.T, keys ...links.Key) *stash.Engine {
	t.Helper()
	signer, err := links.NewHMAC(s.srv.URL+"/share/", keys...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s.store), stash.WithInlineMax(-1),
		stash.WithLinkSigner(signer), stash.WithClock(s.clock.Now),
		stash.WithLinkFetcher(fetcher(t, s.clock, s.srv.Client(), links.VerifyWith(signer))))
	if err != nil {
		t.Fatal(err)
	}
	h := links.NewHandler(e, signer, links.WithClock(s.clock.Now))
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
	return e
}

// client is an engine with no backend that trusts the server's origin.
func (s *shareServer) client(t *testing.T, opts ...stash.Option) *stash.Engine {
	t.Helper()
	opts = append([]stash.Option{stash.WithLinkFetcher(fetcher(t, s.clock, s.srv.Client(), links.TrustOrigins(s.srv.URL)))}, opts...)
	e, err := stash.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func payload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func create(t *testing.T, e *stash.Engine, name string, data []byte, opts ...stash.CreateOption) *stash.Stash {
	t.Helper()
	s, err := e.Create(context.Background(), name, data, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShareRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	srvEng := s.engine(t, key("k1", 1))
	for _, tc := range []struct {
		name string
		data []byte
		opts []stash.CreateOption
	}{
		{"random", payload(300 << 10), nil},
		{"compressible", bytes.Repeat([]byte("claim check "), 50_000), []stash.CreateOption{stash.ContentType("text/plain")}},
		{"scoped", []byte("x"), []stash.CreateOption{stash.InScopes(stash.Scope{Key: "org", Value: "42"})}},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := create(t, srvEng, tc.name, tc.data, tc.opts...)
			link, err := srvEng.Share(ctx, st.String(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(link, s.srv.URL+"/share/mem/default/") {
				t.Fatalf("link %s not under the base URL", link)
			}
			got, err := s.client(t).Retrieve(ctx, link)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, tc.data) || got.Size != int64(len(tc.data)) {
				t.Fatalf("Retrieve through link: %d bytes, want %d", len(got.Data), len(tc.data))
			}
			if got.String() != st.String() {
				t.Errorf("stash address %s, want %s", got, st)
			}
			if want := st.ContentType; got.ContentType != want {
				t.Errorf("content type %q, want %q", got.ContentType, want)
			}
			r, err := s.client(t).Open(ctx, link)
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(streamed, tc.data) {
				t.Fatalf("Open through link: %d bytes, err %v", len(streamed), err)
			}
			// The engine that signed it can read it too: it trusts its base URL.
			if got, err := srvEng.Retrieve(ctx, link); err != nil || !bytes.Equal(got.Data, tc.data) {
				t.Fatalf("serving engine Retrieve: %v", err)
			}
		})
	}
}

func TestShareHandlerHTTP(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	data := []byte(strings.Repeat("<html>", 1000))
	st := create(t, e, "page", data, stash.ContentType("text/html"))
	link, err := e.Share(ctx, st.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	hc := s.srv.Client()

	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET: %s, %d bytes", resp.Status, len(body))
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/html",
		"Content-Length":         fmt.Sprint(len(data)),
		"ETag":                   `"` + st.Address.Digest + `"`,
		"X-Content-Type-Options": "nosniff",
		"Content-Disposition":    `attachment; filename="page"`,
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}

	resp, err = hc.Head(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %s, length %d", resp.Status, resp.ContentLength)
	}

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, link, strings.NewReader("x"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %s, Allow %q", m, resp.Status, resp.Header.Get("Allow"))
		}
	}

	// Missing: a correctly signed link to a deleted stash.
	if err := e.Delete(ctx, st.String()); err != nil {
		t.Fatal(err)
	}
	if code := status(t, hc, link); code != http.StatusNotFound {
		t.Errorf("deleted stash: %d, want 404", code)
	}
	if _, err := s.client(t).Retrieve(ctx, link); !errors.Is(err, stash.ErrNotFound) {
		t.Errorf("Retrieve of deleted stash: %v, want ErrNotFound", err)
	}
}

func status(t *testing.T, hc *http.Client, link string) int {
	t.Helper()
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 && len(body) > 64 {
		t.Errorf("error response of %d bytes: %q", len(body), body)
	}
	return resp.StatusCode
}

func TestShareExpired(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	st := create(t, e, "soon", payload(10<<10))
	link, err := e.Share(ctx, st.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(61 * time.Second)
	if code := status(t, s.srv.Client(), link); code != http.StatusGone {
		t.Errorf("expired link: %d, want 410", code)
	}
	got, err := s.client(t).Retrieve(ctx, link)
	if !errors.Is(err, stash.ErrExpired) || got != nil {
		t.Errorf("Retrieve of expired link: %v, want ErrExpired and no stash", err)
	}
	if r, err := s.client(t).Open(ctx, link); !errors.Is(err, stash.ErrExpired) || r != nil {
		t.Errorf("Open of expired link: %v, want ErrExpired", err)
	}
	// The signing engine refuses it without a request.
	before := s.hits.Load()
	if _, err := e.Retrieve(ctx, link); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("signing engine: %v, want ErrExpired", err)
	}
	if s.hits.Load() != before {
		t.Error("signing engine fetched a link it can tell is expired")
	}

	// A live link to a stash whose own TTL has passed is 410 too.
	st2 := create(t, e, "short", payload(10<<10), stash.TTL(time.Hour))
	link2, err := e.Share(ctx, st2.String(), 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(90 * time.Minute)
	if code := status(t, s.srv.Client(), link2); code != http.StatusGone {
		t.Errorf("expired stash: %d, want 410", code)
	}
	if _, err := s.client(t).Retrieve(ctx, link2); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("Retrieve of expired stash: %v, want ErrExpired", err)
	}
	if _, err := e.Share(ctx, st2.String(), time.Minute); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("Share of expired stash: %v, want ErrExpired", err)
	}
}

func TestShareTampered(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1), key("k2", 2))
	secret := payload(8 << 10)
	a := create(t, e, "a", payload(8<<10))
	b := create(t, e, "b", secret)
	link, err := e.Share(ctx, a.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	q := u.Query()
	edit := func(f func(u *url.URL, q url.Values)) string {
		u2 := *u
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = append([]string(nil), v...)
		}
		f(&u2, q2)
		u2.RawQuery = q2.Encode()
		return u2.String()
	}
	flip := func(s string) string {
		c := byte('A')
		if s[0] == 'A' {
			c = 'B'
		}
		return string(c) + s[1:]
	}
	cases := map[string]string{
		"path to another stash": edit(func(u *url.URL, q url.Values) {
			u.Path = strings.Replace(u.Path, "/"+a.Address.Key(), "/"+b.Address.Key(), 1)
		}),
		"path namespace":  edit(func(u *url.URL, q url.Values) { u.Path = strings.Replace(u.Path, "/default/", "/other/", 1) }),
		"expiry extended": edit(func(u *url.URL, q url.Values) { q.Set("exp", fmt.Sprint(time.Now().Add(240*time.Hour).Unix())) }),
		"signature":       edit(func(u *url.URL, q url.Values) { q.Set("sig", flip(q.Get("sig"))) }),
		"signature cut":   edit(func(u *url.URL, q url.Values) { q.Set("sig", q.Get("sig")[:20]) }),
		"other key id":    edit(func(u *url.URL, q url.Values) { q.Set("kid", "k2") }),
		"unknown key id":  edit(func(u *url.URL, q url.Values) { q.Set("kid", "k9") }),
		"no signature":    edit(func(u *url.URL, q url.Values) { q.Del("sig") }),
		"extra parameter": edit(func(u *url.URL, q url.Values) { q.Set("x", "1") }),
		"doubled expiry":  edit(func(u *url.URL, q url.Values) { q.Add("exp", q.Get("exp")) }),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if bad == link {
				t.Fatal("edit changed nothing")
			}
			if code := status(t, s.srv.Client(), bad); code != http.StatusForbidden {
				t.Errorf("GET: %d, want 403", code)
			}
			got, err := s.client(t).Retrieve(ctx, bad)
			if !errors.Is(err, stash.ErrForbidden) || !errors.Is(err, stash.ErrInvalidAddress) || got != nil {
				t.Errorf("Retrieve: %v, want ErrForbidden (and ErrInvalidAddress)", err)
			}
			// The signing engine refuses it locally, too.
			if _, err := e.Open(ctx, bad); !errors.Is(err, stash.ErrForbidden) && !errors.Is(err, stash.ErrInvalidAddress) {
				t.Errorf("signing engine Open: %v, want a refusal", err)
			}
		})
	}
	// The untouched link still works.
	if _, err := s.client(t).Retrieve(ctx, link); err != nil {
		t.Fatal(err)
	}
}

func TestShareKeyRotation(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	old, next := key("2025-01", 1), key("2025-02", 2)

	e1 := s.engine(t, old)
	st := create(t, e1, "rot", payload(5<<10))
	oldLink, err := e1.Share(ctx, st.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Rotate: the new key signs, the old one still verifies.
	e2 := s.engine(t, next, old)
	newLink, err := e2.Share(ctx, st.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(newLink, "kid=2025-02") {
		t.Fatalf("new link %s not signed with the new key", newLink)
	}
	c := s.client(t)
	for _, l := range []string{oldLink, newLink} {
		if _, err := c.Retrieve(ctx, l); err != nil {
			t.Fatalf("during rotation, %s: %v", l, err)
		}
	}

	// Retire the old key: its links stop working, the new ones keep working.
	s.engine(t, next)
	if _, err := c.Retrieve(ctx, oldLink); !errors.Is(err, stash.ErrForbidden) {
		t.Errorf("link of a retired key: %v, want ErrForbidden", err)
	}
	if _, err := c.Retrieve(ctx, newLink); err != nil {
		t.Errorf("link of the current key: %v", err)
	}
}

func TestShareUntrusted(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	st := create(t, e, "u", payload(5<<10))
	link, err := e.Share(ctx, st.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before := s.hits.Load()
	untrusting, err := stash.New(stash.WithLinkFetcher(fetcher(t, nil, s.srv.Client())))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusting.Retrieve(ctx, link); !errors.Is(err, stash.ErrForbidden) {
		t.Errorf("untrusted origin: %v, want ErrForbidden", err)
	}
	other, err := stash.New(stash.WithLinkFetcher(fetcher(t, nil, s.srv.Client(), links.TrustOrigins("https://stash.example.com"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(ctx, link); !errors.Is(err, stash.ErrForbidden) {
		t.Errorf("other origin: %v, want ErrForbidden", err)
	}
	if s.hits.Load() != before {
		t.Error("an untrusted link was fetched")
	}

	// A trusted server that redirects elsewhere is not followed.
	redir := httptest.NewServer(http.RedirectHandler(link, http.StatusFound))
	defer redir.Close()
	c := trusting(t, []string{redir.URL})
	redirLink := redir.URL + "/mem/default/" + st.Address.Key()
	if _, err := c.Retrieve(ctx, redirLink); !errors.Is(err, stash.ErrForbidden) {
		t.Errorf("redirect to untrusted origin: %v, want ErrForbidden", err)
	}
	if s.hits.Load() != before {
		t.Error("a redirect to an untrusted origin was followed")
	}
}

// liar serves whatever its handler says for any path, as a compromised or
// buggy server would.
func liar(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func digestLink(base string, data []byte) string {
	e, _ := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1))
	st, _ := e.Create(context.Background(), "p", data)
	return base + "/mem/default/" + st.Address.Key()
}

func TestShareLyingServer(t *testing.T) {
	ctx := context.Background()
	want := payload(64 << 10)
	lie := append([]byte(nil), want...)
	lie[1000] ^= 1
	srv := liar(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(lie)))
		_, _ = w.Write(lie)
	})
	c := trusting(t, []string{srv.URL})
	link := digestLink(srv.URL, want)
	got, err := c.Retrieve(ctx, link)
	if !errors.Is(err, stash.ErrIntegrity) || got != nil {
		t.Fatalf("Retrieve from a lying server: %v, want ErrIntegrity and nothing", err)
	}
	r, err := c.Open(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Open from a lying server: %v, want ErrIntegrity at the end", err)
	}
}

func TestShareSizeBombs(t *testing.T) {
	ctx := context.Background()
	const limit = 64 << 10
	var sent atomic.Int64
	big := make([]byte, 4<<20)
	enc, _ := zstd.NewWriter(nil)
	frame := enc.EncodeAll(make([]byte, 16<<20), nil) // 16 MiB of zeros in a few KiB
	srv := liar(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("kind") {
		case "chunked":
			w.(http.Flusher).Flush() // no Content-Length
			n, _ := w.Write(big[:1000])
			sent.Add(int64(n))
		case "zstd":
			w.Header().Set("Content-Encoding", "zstd")
			_, _ = w.Write(frame)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			n, _ := w.Write(big)
			sent.Add(int64(n))
		}
	})
	c := trusting(t, []string{srv.URL}, stash.WithMaxSize(limit))
	link := digestLink(srv.URL, big)

	if _, err := c.Retrieve(ctx, link); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("Content-Length over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := c.Open(ctx, link); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("Open, Content-Length over the limit: %v, want ErrTooLarge", err)
	}

	small := payload(1000)
	chunked := digestLink(srv.URL, small) + "?kind=chunked"
	if _, err := c.Retrieve(ctx, chunked); !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("response of unknown length: %v, want ErrIntegrity", err)
	}

	// A presigned-style link whose fragment says 10 bytes, answered with a
	// zstd bomb: decoding stops one byte past the size.
	st := digestLink(srv.URL, []byte("ten bytes!"))
	u, _ := url.Parse(st)
	addr := "mem://default/" + strings.TrimPrefix(u.Path, "/mem/default/")
	bomb := srv.URL + "/bucket/" + strings.TrimPrefix(u.Path, "/mem/default/") + "?kind=zstd#" +
		url.Values{"stash": {addr}, "size": {"10"}, "enc": {"zstd"}}.Encode()
	if _, err := c.Retrieve(ctx, bomb); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("zstd bomb: %v, want ErrTooLarge", err)
	}
	r, err := c.Open(ctx, bomb)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	r.Close()
	if !errors.Is(err, stash.ErrTooLarge) || n > 10 {
		t.Errorf("Open of zstd bomb: %d bytes, %v; want ErrTooLarge", n, err)
	}
}

// presigner wraps a memstash store with driver.Signer, handing out links to
// a server that serves the stored bytes as they are, as S3 does.
type presigner struct {
	*memstash.Store
	base  string
	clock *stashtest.Clock
}

func (p *presigner) Scheme() string { return "s3" }

func (p *presigner) SignURL(_ context.Context, r driver.LinkRequest) (string, error) {
	now := p.clock.Now()
	return fmt.Sprintf("%s/%s/%s?X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-Signature=abc", p.base, r.Namespace, r.Key,
		now.UTC().Format("20060102T150405Z"), int(r.Expires.Sub(now)/time.Second)), nil
}

func TestSharePresigned(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ns, k, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		rc, a, err := store.Get(r.Context(), ns, k)
		if err != nil {
			http.Error(w, "NoSuchKey", http.StatusNotFound)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Length", fmt.Sprint(a.StoredSize))
		_, _ = io.Copy(w, rc)
	}))
	defer srv.Close()
	clk := stashtest.NewClock(time.Now())
	p := &presigner{Store: store, base: srv.URL, clock: clk}
	e, err := stash.New(stash.WithBackend(p), stash.WithInlineMax(-1), stash.WithClock(clk.Now),
		stash.WithLinkFetcher(fetcher(t, clk, srv.Client(), links.TrustOrigins(srv.URL))))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("zstd pays here "), 20_000)
	st := create(t, e, "doc", data, stash.InScopes(stash.Scope{Key: "org", Value: "7"}))
	if st.Encoding != driver.EncodingZstd {
		t.Fatalf("want a zstd-stored stash, got %q", st.Encoding)
	}
	link, err := e.Share(ctx, st.String(), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, srv.URL+"/default/org=7/doc.") || !strings.Contains(link, "stash=s3%3A%2F%2Fdefault%2Forg%3D7%2Fdoc.") {
		t.Fatalf("presigned link %s", link)
	}
	got, err := e.Retrieve(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, data) || got.String() != st.String() {
		t.Fatalf("presigned Retrieve: %d bytes at %s", len(got.Data), got)
	}

	// The fragment must name the key the signed path holds.
	other := create(t, e, "other", payload(5<<10))
	swapped := strings.Replace(link, url.QueryEscape(st.String()), url.QueryEscape(other.String()), 1)
	if _, err := e.Retrieve(ctx, swapped); !errors.Is(err, stash.ErrForbidden) || !errors.Is(err, stash.ErrInvalidAddress) {
		t.Errorf("fragment naming another stash: %v, want ErrForbidden (and ErrInvalidAddress)", err)
	}

	// With keys and a base URL, a compressed stash is shared through the
	// handler (which decodes); a stored-as-given one is still presigned.
	hs := newShareServer(t)
	hsigner, err := links.NewHMAC(hs.srv.URL, key("k", 1))
	if err != nil {
		t.Fatal(err)
	}
	both, err := stash.New(stash.WithBackend(p), stash.WithInlineMax(-1), stash.WithClock(clk.Now),
		stash.WithLinkSigner(hsigner))
	if err != nil {
		t.Fatal(err)
	}
	if l, err := both.Share(ctx, st.String(), time.Minute); err != nil || !strings.HasPrefix(l, hs.srv.URL+"/s3/default/org=7/doc.") {
		t.Errorf("compressed stash with keys: %q, %v; want a handler link", l, err)
	}
	if l, err := both.Share(ctx, other.String(), time.Minute); err != nil || !strings.HasPrefix(l, srv.URL+"/default/other.") {
		t.Errorf("stored-as-given stash: %q, %v; want a presigned link", l, err)
	}

	// Expired presigned links are refused before any request.
	clk.Advance(11 * time.Minute)
	before := hits.Load()
	if _, err := e.Retrieve(ctx, link); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("expired presigned link: %v, want ErrExpired", err)
	}
	if hits.Load() != before {
		t.Error("an expired presigned link was fetched")
	}
}

func TestShareErrors(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	st := create(t, e, "x", payload(5<<10))
	missing := strings.Replace(st.String(), "/x.", "/y.", 1)
	noKeys, _ := stash.New(stash.WithBackend(s.store))
	link, _ := e.Share(ctx, st.String(), 0)
	for name, tc := range map[string]struct {
		e    *stash.Engine
		addr string
		ttl  time.Duration
		want error
	}{
		"missing":     {e, missing, 0, stash.ErrNotFound},
		"inline":      {e, "inline://default/i?data=aGk%3D", 0, stash.ErrUnsupported},
		"a link":      {e, link, 0, stash.ErrInvalidAddress},
		"garbage":     {e, "mem://default/../../etc", 0, stash.ErrInvalidAddress},
		"no keys":     {noKeys, st.String(), 0, stash.ErrUnsupported},
		"ttl too big": {e, st.String(), stash.MaxShareTTL + time.Second, nil},
		"ttl <0":      {e, st.String(), -time.Second, nil},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := tc.e.Share(ctx, tc.addr, tc.ttl)
			if err == nil || l != "" {
				t.Fatalf("Share: %q, %v; want an error", l, err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Share: %v, want %v", err, tc.want)
			}
			var se *stash.Error
			if !errors.As(err, &se) || se.Op != "share" {
				t.Errorf("Share error %v is not a *stash.Error for op share", err)
			}
		})
	}
}

func TestKeysAndOptions(t *testing.T) {
	secret := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes
	keys, err := links.ParseKeys("new:" + secret + ", old:" + strings.TrimRight(secret, "="))
	if err != nil || len(keys) != 2 || keys[0].ID != "new" || len(keys[1].Secret) != 32 {
		t.Fatalf("ParseKeys: %v %v", keys, err)
	}
	for _, bad := range []string{"", "nocolon", "k:short", "k:not*base64", "bad id:" + secret, ":" + secret} {
		if _, err := links.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
	for name, f := range map[string]func() error{
		"no keys": func() error { _, err := links.NewHMAC("https://x/"); return err },
		"short secret": func() error {
			_, err := links.NewHMAC("https://x/", links.Key{ID: "k", Secret: []byte("short")})
			return err
		},
		"duplicate id":  func() error { _, err := links.NewHMAC("https://x/", key("k", 1), key("k", 2)); return err },
		"base not http": func() error { _, err := links.NewHMAC("ftp://x/", key("k", 1)); return err },
		"base query":    func() error { _, err := links.NewHMAC("https://x/?a=b", key("k", 1)); return err },
		"base userinfo": func() error { _, err := links.NewHMAC("https://u:p@x/", key("k", 1)); return err },
		"origin path":   func() error { _, err := links.NewFetcher(links.TrustOrigins("https://x/path")); return err },
		"nil client":    func() error { _, err := links.NewFetcher(links.WithHTTPClient(nil)); return err },
		"verify no base": func() error {
			h, _ := links.NewHMAC("", key("k", 1))
			_, err := links.NewFetcher(links.VerifyWith(h))
			return err
		},
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A verifying-only signer (no base URL) cannot sign.
	h, err := links.NewHMAC("", key("k", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SignURL(context.Background(), driver.LinkRequest{Scheme: "mem", Namespace: "default", Key: "x." + strings.Repeat("a", 64), Expires: time.Now().Add(time.Minute)}); !errors.Is(err, stash.ErrUnsupported) {
		t.Errorf("SignURL without a base URL: %v, want ErrUnsupported", err)
	}
}

func FuzzLink(f *testing.F) {
	for _, s := range []string{
		"https://127.0.0.1:1/share/mem/default/n." + strings.Repeat("a", 64) + "?exp=1&kid=k&sig=x",
		"https://127.0.0.1:1/b/n." + strings.Repeat("a", 64) + "#stash=mem%3A%2F%2Fdefault%2Fn." + strings.Repeat("a", 64) + "&size=3",
		"http://h/mem/d/k=v/n." + strings.Repeat("0", 32),
		"https://h/inline/d/x?data=aGk=", "https:///", "http://u@h/", "https://h/%zz", "https://h/#%",
	} {
		f.Add(s)
	}
	signer, err := links.NewHMAC("https://127.0.0.1:1/share", key("k", 1))
	if err != nil {
		f.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithLinkSigner(signer),
		stash.WithLinkFetcher(fetcher(f, nil, nil, links.VerifyWith(signer))))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, link string) {
		// Only the engine's own (unreachable) origin is trusted: parsing and
		// local verification run, and nothing may panic or yield data.
		if got, err := e.Retrieve(context.Background(), link); err == nil || got != nil {
			t.Fatalf("Retrieve(%q) = %v, %v", link, got, err)
		}
	})
}

// TestShareHandlerCorruptStash: a stash whose stored bytes no longer match
// their digest is never served whole: the body stops short of its
// Content-Length, so no client can take it for the payload.
func TestShareHandlerCorruptStash(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	for _, size := range []int{10 << 10, 1 << 20} {
		st := create(t, e, fmt.Sprintf("c%d", size), payload(size))
		link, err := e.Share(ctx, st.String(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !s.store.Corrupt(st.Namespace(), st.Address.Key(), int64(size-1)) {
			t.Fatal("Corrupt found nothing")
		}
		resp, err := s.srv.Client().Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || len(body) >= size {
			t.Errorf("%d bytes: GET of a corrupt stash read %d bytes, err %v; want a short body and an error", size, len(body), err)
		}
		if got, err := s.client(t).Retrieve(ctx, link); err == nil || got != nil {
			t.Errorf("%d bytes: Retrieve of a corrupt stash: %v", size, err)
		}
	}
}

// osPresigner wraps a memstash store with driver.Signer the way an
// objectstore service presigns: /v1/objects/{usecase}/{k=v;k2=v2}/{key}
// with os_kid, os_timestamp, os_duration and os_sig.
type osPresigner struct {
	*memstash.Store
	base  string
	clock *stashtest.Clock
}

func (p *osPresigner) Scheme() string { return "objstore" }

func (p *osPresigner) SignURL(_ context.Context, r driver.LinkRequest) (string, error) {
	segs := strings.Split(r.Key, "/")
	scopes := "_"
	if len(segs) > 1 {
		scopes = strings.Join(segs[:len(segs)-1], ";")
	}
	now := p.clock.Now()
	q := url.Values{"os_kid": {"relay"}, "os_timestamp": {now.UTC().Format(time.RFC3339)},
		"os_duration": {fmt.Sprint(int(r.Expires.Sub(now) / time.Second))}, "os_sig": {"c2ln"}}
	return p.base + "/v1/objects/" + r.Namespace + "/" + scopes + "/" + segs[len(segs)-1] + "?" + q.Encode(), nil
}

// An objectstore-style presigned URL fits the same interfaces: the driver
// signs it, the engine adds the fragment, the fetcher fetches it (and
// refuses it by its os_timestamp and os_duration once expired), and the
// engine verifies the bytes.
func TestShareObjectstorePresigned(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		rest := strings.TrimPrefix(r.URL.Path, "/v1/objects/")
		ns, rest, _ := strings.Cut(rest, "/")
		scopes, name, _ := strings.Cut(rest, "/")
		key := strings.ReplaceAll(scopes, ";", "/") + "/" + name
		rc, a, err := store.Get(r.Context(), ns, key)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Length", fmt.Sprint(a.StoredSize))
		_, _ = io.Copy(w, rc)
	}))
	defer srv.Close()
	clk := stashtest.NewClock(time.Now())
	e, err := stash.New(stash.WithBackend(&osPresigner{Store: store, base: srv.URL, clock: clk}), stash.WithInlineMax(-1),
		stash.WithClock(clk.Now), stash.WithLinkFetcher(fetcher(t, clk, srv.Client(), links.TrustOrigins(srv.URL))))
	if err != nil {
		t.Fatal(err)
	}
	data := payload(40 << 10)
	st := create(t, e, "doc", data, stash.InScopes(stash.Scope{Key: "org", Value: "17"}, stash.Scope{Key: "project", Value: "42"}))
	link, err := e.Share(ctx, st.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, srv.URL+"/v1/objects/default/org=17;project=42/doc.") || !strings.Contains(link, "os_sig=") {
		t.Fatalf("link %s", link)
	}
	got, err := e.Retrieve(ctx, link)
	if err != nil || !bytes.Equal(got.Data, data) || got.String() != st.String() {
		t.Fatalf("Retrieve of an objectstore presigned link: %v", err)
	}
	clk.Advance(61 * time.Minute)
	before := hits.Load()
	if _, err := e.Retrieve(ctx, link); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("expired objectstore link: %v, want ErrExpired", err)
	}
	if hits.Load() != before {
		t.Error("an expired objectstore link was fetched")
	}
}
