package service_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t testing.TB) *filestash.Store {
	t.Helper()
	st, err := filestash.New(t.TempDir(), filestash.NoSync())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// open starts a server without auth over a fresh file store.
func open(t *testing.T, opts ...service.Option) (*httptest.Server, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := service.New(newStore(t), append([]service.Option{service.WithoutAuth(), service.WithClock(c.now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, c
}

func do(t *testing.T, method, url string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantStatus(t *testing.T, r *http.Response, code int) {
	t.Helper()
	if r.StatusCode != code {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL, r.StatusCode, code, b)
	}
}

func TestObjectLifecycle(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/org=42;project=7/some/key.txt"
	r := do(t, "PUT", u, strings.NewReader("hello world"),
		"Content-Type", "text/plain", "x-sn-origin", "10.0.0.1", "x-snme-Color", "bl%C3%BCe", "x-sn-expiration", "ttl:1 days")
	wantStatus(t, r, 200)
	var out struct{ Key string }
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || out.Key != "some/key.txt" {
		t.Fatalf("PUT answered %+v, %v", out, err)
	}

	r = do(t, "GET", u, nil)
	wantStatus(t, r, 200)
	if got := readAll(t, r); got != "hello world" {
		t.Fatalf("GET = %q", got)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/plain", "X-Sn-Origin": "10.0.0.1", "X-Snme-Color": "bl%C3%BCe",
		"X-Sn-Expiration": "ttl:1d", "X-Sn-Time-Created": "2026-01-02T03:04:05.000000Z",
		"X-Sn-Time-Expires": "2026-01-03T03:04:05.000000Z", "X-Sn-Size": "11",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("GET header %s = %q, want %q", k, got, want)
		}
	}

	r = do(t, "HEAD", u, nil)
	wantStatus(t, r, 204)
	if r.Header.Get("X-Sn-Origin") != "10.0.0.1" {
		t.Errorf("HEAD lacks metadata: %v", r.Header)
	}

	r = do(t, "GET", u, nil, "Range", "bytes=6-")
	wantStatus(t, r, 206)
	if got := readAll(t, r); got != "world" || r.Header.Get("Content-Range") != "bytes 6-10/11" {
		t.Fatalf("range GET = %q, %q", got, r.Header.Get("Content-Range"))
	}
	r = do(t, "GET", u, nil, "Range", "bytes=-3")
	wantStatus(t, r, 206)
	if got := readAll(t, r); got != "rld" {
		t.Fatalf("suffix range GET = %q", got)
	}
	r = do(t, "GET", u, nil, "Range", "bytes=11-")
	wantStatus(t, r, 416)

	// Scope order matters: the same key under reversed scopes is another object.
	r = do(t, "GET", ts.URL+"/v1/objects/testing/project=7;org=42/some/key.txt", nil)
	wantStatus(t, r, 404)
	if b := readAll(t, r); b != "" {
		t.Fatalf("404 GET has a body: %q", b)
	}

	// PUT replaces.
	wantStatus(t, do(t, "PUT", u, strings.NewReader("second")), 200)
	r = do(t, "GET", u, nil)
	if got := readAll(t, r); got != "second" || r.Header.Get("X-Sn-Origin") != "" {
		t.Fatalf("after replace GET = %q, origin %q", got, r.Header.Get("X-Sn-Origin"))
	}

	wantStatus(t, do(t, "DELETE", u, nil), 204)
	wantStatus(t, do(t, "GET", u, nil), 404)
	wantStatus(t, do(t, "HEAD", u, nil), 404)
	wantStatus(t, do(t, "DELETE", u, nil), 204)
}

func TestPostMakesKey(t *testing.T) {
	ts, _ := open(t)
	r := do(t, "POST", ts.URL+"/v1/objects/testing/_/", strings.NewReader("x"))
	wantStatus(t, r, 201)
	var out struct{ Key string }
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || len(out.Key) != 36 || out.Key[14] != '4' {
		t.Fatalf("POST key %q (%v), want a UUIDv4", out.Key, err)
	}
	r = do(t, "GET", ts.URL+"/v1/objects/testing/_/"+out.Key, nil)
	wantStatus(t, r, 200)
	if readAll(t, r) != "x" {
		t.Fatal("wrong body")
	}
	// objectstore takes the collection without its trailing slash too.
	r = do(t, "POST", ts.URL+"/v1/objects/testing/org=1", strings.NewReader("y"))
	wantStatus(t, r, 201)
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || len(out.Key) != 36 {
		t.Fatalf("POST without the slash: key %q (%v)", out.Key, err)
	}
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/org=1", nil), 400)
}

func TestChunkedBody(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/_/chunked"
	req, _ := http.NewRequest("PUT", u, io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp, 200)
	if got := readAll(t, do(t, "GET", u, nil)); got != "abcdef" {
		t.Fatalf("GET = %q", got)
	}
}

func TestExpiry(t *testing.T) {
	ts, c := open(t)
	ttl := ts.URL + "/v1/objects/testing/_/ttl"
	tti := ts.URL + "/v1/objects/testing/_/tti"
	wantStatus(t, do(t, "PUT", ttl, strings.NewReader("a"), "x-sn-expiration", "ttl:1h"), 200)
	wantStatus(t, do(t, "PUT", tti, strings.NewReader("b"), "x-sn-expiration", "tti:40m"), 200)
	c.add(30 * time.Minute)
	wantStatus(t, do(t, "GET", tti, nil), 200) // bumps: 30m >= min(40m/4, 24h)
	c.add(31 * time.Minute)
	wantStatus(t, do(t, "GET", ttl, nil), 404) // 61m past creation
	r := do(t, "GET", tti, nil)                // 31m past the last read
	wantStatus(t, r, 200)
	if got := r.Header.Get("X-Sn-Time-Expires"); got != "2026-01-02T04:14:05.000000Z" {
		t.Fatalf("tti expires %q, want the read 31 minutes ago plus 40", got)
	}
	c.add(41 * time.Minute)
	wantStatus(t, do(t, "HEAD", tti, nil), 404)
}

func TestBadRequests(t *testing.T) {
	ts, _ := open(t, service.WithMaxBodySize(10), service.WithMaxScopes(2))
	for _, tc := range []struct {
		method, path string
		hdr          []string
		body         string
		want         int
	}{
		{"PUT", "/v1/objects/testing/_/k", []string{"Content-Encoding", "br"}, "x", 400},
		{"PUT", "/v1/objects/testing/_/k", []string{"Content-Encoding", "zstd, gzip"}, "x", 400},
		{"PUT", "/v1/objects/testing/_/k", []string{"x-sn-expiration", "ttl:forever"}, "x", 400},
		{"PUT", "/v1/objects/testing/_/k", nil, "01234567890", 413},
		{"PUT", "/v1/objects/testing/a=1;b=2;c=3/k", nil, "x", 400},
		{"PUT", "/v1/objects/testing/a=1;a=2/k", nil, "x", 400},
		{"PUT", "/v1/objects/testing/_/", nil, "x", 400},
		{"POST", "/v1/objects/testing/_/k", nil, "x", 400},
		{"OPTIONS", "/v1/objects/testing/_/k", nil, "x", 405},
		{"GET", "/v1/objects/t.x/_/k", nil, "", 400},
		{"GET", "/v1/objects/" + strings.Repeat("u", 65) + "/_/k", nil, "", 400},
		{"GET", "/v1/nothing", nil, "", 404},
	} {
		r := do(t, tc.method, ts.URL+tc.path, strings.NewReader(tc.body), tc.hdr...)
		if r.StatusCode != tc.want {
			t.Errorf("%s %s %v: status %d, want %d", tc.method, tc.path, tc.hdr, r.StatusCode, tc.want)
			continue
		}
		if tc.want != 404 {
			// objectstore's error: a detail, and causes only when
			// there are some.
			var e map[string]json.RawMessage
			err := json.NewDecoder(r.Body).Decode(&e)
			var detail string
			var causes []string
			if err == nil {
				err = json.Unmarshal(e["detail"], &detail)
			}
			if c, ok := e["causes"]; ok && err == nil {
				if err = json.Unmarshal(c, &causes); err == nil && len(causes) == 0 {
					err = errors.New("an empty causes list")
				}
			}
			for _, c := range causes {
				if c == detail {
					err = fmt.Errorf("the detail %q repeated among the causes", detail)
				}
			}
			if err != nil || detail == "" || len(e) > 2 {
				t.Errorf("%s %s: error body %v, %v", tc.method, tc.path, e, err)
			}
		}
	}
}

// TestLowercaseHeadersOnTheWire reads a raw response: Go's client would
// canonicalise the names and hide the bug the Python client trips over.
func TestLowercaseHeadersOnTheWire(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/_/z"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("not really zstd"), "Content-Encoding", "zstd", "x-snme-a", "b"), 200)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/objects/testing/_/z HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, want := range []string{"\r\ncontent-encoding: zstd\r\n", "\r\ncontent-type: application/octet-stream\r\n", "\r\nx-snme-a: b\r\n", "\r\nx-sn-time-created: ", "\r\ncontent-disposition: attachment\r\n"} {
		if !bytes.Contains(head, []byte(want)) {
			t.Errorf("response head lacks %q:\n%s", want, head)
		}
	}
	if n := bytes.Count(bytes.ToLower(head), []byte("\r\ncontent-type:")); n != 1 {
		t.Errorf("%d content-type headers, want exactly ours:\n%s", n, head)
	}
	if string(body) != "not really zstd" {
		t.Errorf("body %q: want the stored bytes as they are", body)
	}
}

func TestHealthReady(t *testing.T) {
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(service.Handler(s, http.NotFoundHandler()))
	defer ts.Close()
	// As objectstore answers them: plain text.
	for _, route := range []string{"/health", "/ready"} {
		r := do(t, "GET", ts.URL+route, nil)
		wantStatus(t, r, 200)
		if b := readAll(t, r); b != "OK" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: %q (%s), want OK", route, b, r.Header.Get("Content-Type"))
		}
	}
	s.Drain()
	r := do(t, "GET", ts.URL+"/ready", nil)
	wantStatus(t, r, 503)
	if b := readAll(t, r); b != "Shutting down" {
		t.Errorf("/ready while draining: %q", b)
	}
	wantStatus(t, do(t, "GET", ts.URL+"/health", nil), 200)
}

func TestNewNeedsAuthDecision(t *testing.T) {
	if _, err := service.New(newStore(t)); err != service.ErrNoAuth {
		t.Fatalf("New without auth options: %v, want ErrNoAuth", err)
	}
}

func TestServeDrains(t *testing.T) {
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- service.Serve(ctx, ln, s, s, service.WithDrainDelay(200*time.Millisecond), service.WithShutdownTimeout(time.Second))
	}()
	base := "http://" + ln.Addr().String()
	wantStatus(t, do(t, "GET", base+"/ready", nil), 200)
	cancel()
	deadline := time.Now().Add(time.Second)
	for !s.Draining() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	wantStatus(t, do(t, "GET", base+"/ready", nil), 503)
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

// brokenDriver fails every call with an error naming a server path.
type brokenDriver struct{ driver.Driver }

func (brokenDriver) Stat(context.Context, string, string) (*driver.Attributes, error) {
	return nil, errors.New("filestash: open /var/lib/secret/place: input/output error")
}

func (b brokenDriver) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	_, err := b.Stat(ctx, ns, key)
	return nil, nil, err
}

func TestInternalErrorsStayInTheLog(t *testing.T) {
	var logged bytes.Buffer
	s, err := service.New(brokenDriver{newStore(t)}, service.WithoutAuth(), service.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	r := do(t, "GET", ts.URL+"/v1/objects/testing/_/k", nil)
	wantStatus(t, r, 500)
	body := readAll(t, r)
	if strings.Contains(body, "/var/lib") || !strings.Contains(body, `"detail"`) {
		t.Errorf("500 body %q: want a JSON error without the cause", body)
	}
	if !strings.Contains(logged.String(), "/var/lib/secret/place") {
		t.Errorf("log %q lacks the cause", logged.String())
	}
}

func TestHeaderLimit(t *testing.T) {
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Config = service.NewHTTPServer(s)
	ts.Start()
	defer ts.Close()
	r := do(t, "GET", ts.URL+"/v1/objects/testing/_/k", nil, "x-snme-big", strings.Repeat("a", service.DefaultMaxHeaderBytes+8<<10)) // net/http allows 4 KiB of slack
	wantStatus(t, r, http.StatusRequestHeaderFieldsTooLarge)
	many := []string{}
	for i := range service.MaxMetadata + 1 {
		many = append(many, fmt.Sprintf("x-snme-k%d", i), "v")
	}
	wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/_/k", strings.NewReader("x"), many...), http.StatusRequestHeaderFieldsTooLarge)
}

// TestCutReplaceKeepsOld: a replacing PUT whose upload is cut short leaves
// the object it would have replaced.
func TestCutReplaceKeepsOld(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/_/precious"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("the old bytes")), 200)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v1/objects/testing/_/precious HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
	time.Sleep(50 * time.Millisecond)
	conn.Close()
	for range 5 { // never missing, not even while the server gives up on the upload
		r := do(t, "GET", u, nil)
		wantStatus(t, r, 200)
		if got := readAll(t, r); got != "the old bytes" {
			t.Fatalf("after a cut replace GET = %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And a new key cut short leaves nothing.
	conn, _ = net.Dial("tcp", ts.Listener.Addr().String())
	fmt.Fprintf(conn, "PUT /v1/objects/testing/_/fresh HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
	time.Sleep(50 * time.Millisecond)
	conn.Close()
	time.Sleep(50 * time.Millisecond)
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/_/fresh", nil), 404)
}

func TestServeTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	s, _ := service.New(newStore(t), service.WithoutAuth())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- service.Serve(ctx, ln, s, s, service.WithTLS(certFile, keyFile), service.WithDrainDelay(-1))
	}()
	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + ln.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, resp, 200)
	client.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
