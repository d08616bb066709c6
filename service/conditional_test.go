package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// TestConditionalPut: every object response says the server honours
// If-None-Match: * on a PUT; such a PUT creates a new key and is 412 for a
// key that holds an object, which keeps its bytes; a PUT without the
// condition still replaces, as objectstore's does.
func TestConditionalPut(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/org=1/k"
	advertised := func(r *http.Response) {
		t.Helper()
		if got := r.Header.Get(service.HeaderConditionalPut); got != service.ConditionalPutIfNoneMatch {
			t.Errorf("%s %d: %s = %q, want %q", r.Request.Method, r.StatusCode, service.HeaderConditionalPut, got, service.ConditionalPutIfNoneMatch)
		}
	}
	r := do(t, "HEAD", u, nil)
	wantStatus(t, r, 404)
	advertised(r)
	r = do(t, "PUT", u, strings.NewReader("first"), "If-None-Match", "*")
	wantStatus(t, r, 200)
	advertised(r)
	r = do(t, "PUT", u, strings.NewReader("second"), "If-None-Match", "*")
	wantStatus(t, r, 412)
	advertised(r)
	if body := readAll(t, r); !strings.Contains(body, `"detail"`) {
		t.Errorf("412 body %q: want a JSON error", body)
	}
	r = do(t, "GET", u, nil)
	wantStatus(t, r, 200)
	advertised(r)
	if got := readAll(t, r); got != "first" {
		t.Errorf("after a refused create-only PUT: %q, want the first bytes", got)
	}
	r = do(t, "GET", u, nil, "Range", "bytes=x")
	wantStatus(t, r, 400)
	advertised(r)
	wantStatus(t, do(t, "PUT", u, strings.NewReader("third")), 200)
	if got := readAll(t, do(t, "GET", u, nil)); got != "third" {
		t.Errorf("a PUT without the condition: %q, want it replaced", got)
	}
}

// hideConditional makes the server look like objectstore's own: it ignores
// If-None-Match and sends no HeaderConditionalPut.
func hideConditional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("If-None-Match")
		next.ServeHTTP(stripHeader{w, service.HeaderConditionalPut}, r)
	})
}

// stripHeader removes one response header (by its exact name: the server
// writes them lowercase) before the response goes out.
type stripHeader struct {
	http.ResponseWriter
	name string
}

func (s stripHeader) WriteHeader(code int) {
	delete(s.Header(), s.name)
	s.ResponseWriter.WriteHeader(code)
}

func (s stripHeader) Write(b []byte) (int, error) {
	delete(s.Header(), s.name)
	return s.ResponseWriter.Write(b)
}

// TestObjectstashPutConditional: against this server, once a response has
// said so, the backend's Put sends If-None-Match: * and no HEAD, and an
// existing key (a small body and a large one, which the server refuses
// before reading it) is driver.ErrExists with the stored bytes untouched.
// Against a server that does not say so, every Put asks with a HEAD first,
// with the same outcome.
func TestObjectstashPutConditional(t *testing.T) {
	for _, objectstore := range []bool{false, true} {
		name := map[bool]string{false: "claimstash", true: "objectstore-like"}[objectstore]
		t.Run(name, func(t *testing.T) {
			var heads, conditional atomic.Int64
			h := &objectHarness{tb: t, wrap: func(next http.Handler) http.Handler {
				inner := next
				if objectstore {
					inner = hideConditional(next)
				}
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodHead {
						heads.Add(1)
					}
					if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" {
						conditional.Add(1)
					}
					inner.ServeHTTP(w, r)
				})
			}}
			d, err := h.MakeDriver(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			put := func(key string, data []byte) error {
				return d.Put(ctx, "cond", key, bytes.NewReader(data), int64(len(data)), benchAttrs(len(data)))
			}
			// The first Put has seen no response yet: it asks.
			if err := put("org=1/a", []byte("a")); err != nil {
				t.Fatal(err)
			}
			if heads.Load() != 1 {
				t.Fatalf("first Put: %d HEADs, want 1", heads.Load())
			}
			big := stashtest.RandomPayload(4<<20, 5)
			for _, data := range [][]byte{[]byte("b"), big} {
				key := "org=1/k" + string(rune('0'+len(data)%10))
				before, beforeCond := heads.Load(), conditional.Load()
				if err := put(key, data); err != nil {
					t.Fatalf("Put %d bytes: %v", len(data), err)
				}
				wantHeads, wantCond := int64(0), int64(1)
				if objectstore {
					wantHeads, wantCond = 1, 0
				}
				if got := heads.Load() - before; got != wantHeads {
					t.Errorf("Put of a new key: %d HEADs, want %d", got, wantHeads)
				}
				if got := conditional.Load() - beforeCond; got != wantCond {
					t.Errorf("Put of a new key: %d create-only PUTs, want %d", got, wantCond)
				}
				other := bytes.Repeat([]byte{'x'}, len(data))
				if err := put(key, other); !errors.Is(err, driver.ErrExists) {
					t.Fatalf("Put of an existing key (%d bytes): %v, want ErrExists", len(data), err)
				}
				rc, _, err := d.Get(ctx, "cond", key)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("after a refused Put: %d bytes (%v), want the first %d", len(got), err, len(data))
				}
			}
		})
	}
}

// TestEngineCreateAsksNothingFirst: an engine over the backend creates a
// stash of up to 1 MiB with one request against this server (a create-only
// PUT, no HEAD), and with the backend's own HEAD and the PUT against one
// like objectstore's. Content stored already is found after the refused
// PUT, or by that HEAD, and reads back as it was; content the same engine
// stored lately is asked for first, and not sent again. A larger payload
// is still asked for first, and is not sent when it is there.
func TestEngineCreateAsksNothingFirst(t *testing.T) {
	for _, objectstore := range []bool{false, true} {
		name := map[bool]string{false: "claimstash", true: "objectstore-like"}[objectstore]
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			h := &objectHarness{tb: t, wrap: func(next http.Handler) http.Handler {
				inner := next
				if objectstore {
					inner = hideConditional(next)
				}
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					seen[r.Method]++
					mu.Unlock()
					inner.ServeHTTP(w, r)
				})
			}}
			d, err := h.MakeDriver(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			e, other := engineOn(t, d), engineOn(t, d)
			ctx := context.Background()
			requests := func() string {
				mu.Lock()
				defer mu.Unlock()
				out := fmt.Sprintf("%d HEAD, %d PUT, %d GET", seen["HEAD"], seen["PUT"], seen["GET"])
				clear(seen)
				return out
			}
			expect := func(what, want string) {
				t.Helper()
				if got := requests(); got != want {
					t.Errorf("%s: %s, want %s", what, got, want)
				}
			}
			// The backend has heard nothing from the server yet.
			if _, err := e.Create(ctx, "warm", []byte("warm up the backend")); err != nil {
				t.Fatal(err)
			}
			requests()
			// Content the engine stored lately is asked for first.
			newStash, again, elsewhere := "0 HEAD, 1 PUT, 0 GET", "1 HEAD, 0 PUT, 0 GET", "1 HEAD, 1 PUT, 0 GET"
			if objectstore {
				// Put asks first itself: objectstore's server would
				// replace what is there.
				newStash, elsewhere = "1 HEAD, 1 PUT, 0 GET", "2 HEAD, 0 PUT, 0 GET"
			}
			for _, size := range []int{1 << 10, 1 << 20} {
				payload := stashtest.RandomPayload(size, uint64(size))
				s, err := e.Create(ctx, "k", payload, stash.NoExpiry())
				if err != nil {
					t.Fatal(err)
				}
				expect(fmt.Sprintf("Create of %d new bytes", size), newStash)
				// No expiry, so none to extend: the second Create
				// makes no request to update one.
				s2, err := e.Create(ctx, "k", payload, stash.NoExpiry())
				if err != nil {
					t.Fatal(err)
				}
				if s2.String() != s.String() {
					t.Fatalf("second Create: %s, want %s", s2, s)
				}
				expect(fmt.Sprintf("Create of %d stored bytes", size), again)
				// Stored by another engine: put first on our server.
				if _, err := other.Create(ctx, "k", payload, stash.NoExpiry()); err != nil {
					t.Fatal(err)
				}
				expect(fmt.Sprintf("Create of %d bytes another engine stored", size), elsewhere)
				got, err := e.Retrieve(ctx, s.String())
				if err != nil || !bytes.Equal(got.Data, payload) {
					t.Fatalf("Retrieve: %v", err)
				}
				requests()
			}
			big := stashtest.RandomPayload(1<<20+1, 7)
			if _, err := e.Create(ctx, "big", big, stash.NoExpiry()); err != nil {
				t.Fatal(err)
			}
			bigNew := "1 HEAD, 1 PUT, 0 GET"
			if objectstore {
				bigNew = "2 HEAD, 1 PUT, 0 GET"
			}
			expect("Create of new bytes over 1 MiB", bigNew)
			if _, err := e.Create(ctx, "big", big, stash.NoExpiry()); err != nil {
				t.Fatal(err)
			}
			expect("Create of stored bytes over 1 MiB", "1 HEAD, 0 PUT, 0 GET")
		})
	}
}

// TestRefusedCreateKeepsTheConnection: a Create of up to 1 MiB of content
// stored already is a PUT the server refuses; the server reads and drops
// its body and the backend reads the answer to its end, so the connection
// is used again instead of a new one made for every such Create.
func TestRefusedCreateKeepsTheConnection(t *testing.T) {
	var conns atomic.Int64
	h := &objectHarness{tb: t, connState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	d, err := h.MakeDriver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e := engineOn(t, d)
	ctx := context.Background()
	for _, size := range []int{1 << 10, 300 << 10, 1 << 20} {
		payload := stashtest.RandomPayload(size, uint64(size))
		if _, err := e.Create(ctx, "again", payload, stash.NoExpiry()); err != nil {
			t.Fatal(err)
		}
		before := conns.Load()
		for range 10 {
			if _, err := e.Create(ctx, "again", payload, stash.NoExpiry()); err != nil {
				t.Fatal(err)
			}
		}
		if n := conns.Load() - before; n != 0 {
			t.Errorf("10 Creates of %d bytes stored already: %d new connections, want 0", size, n)
		}
	}
}

// countedBody counts the bytes read from it.
type countedBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countedBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestRefusedCreateWaitingClient: a create-only PUT that waits to send its
// body until asked (Expect: 100-continue) is refused without being asked,
// so its body is never sent.
func TestRefusedCreateWaitingClient(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/org=1/waits"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("first")), 200)
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	body := &countedBody{r: bytes.NewReader(stashtest.RandomPayload(64<<10, 1))}
	req, err := http.NewRequest("PUT", u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 64 << 10
	req.Header.Set("If-None-Match", "*")
	req.Header.Set("Expect", "100-continue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp, 412)
	if n := body.n.Load(); n != 0 {
		t.Errorf("the client was asked for its body: %d bytes sent, want 0", n)
	}
}
