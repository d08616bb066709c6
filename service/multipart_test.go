package service_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// serveDriver starts a server without auth over d.
func serveDriver(t *testing.T, d driver.Driver) *httptest.Server {
	t.Helper()
	s, err := service.New(d, service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// mpClient speaks objectstore's multipart protocol to one server, for one
// usecase and scopes.
type mpClient struct {
	t    *testing.T
	base string // the server's URL
	path string // "testing/org=42"
}

func (c mpClient) url(route, key, query string) string {
	u := c.base + "/v1/objects" + route + "/" + c.path + "/" + key
	if query != "" {
		u += "?" + query
	}
	return u
}

// object reads the object under key, "" when there is none.
func (c mpClient) object(key string) string {
	c.t.Helper()
	r := do(c.t, "GET", c.base+"/v1/objects/"+c.path+"/"+key, nil)
	if r.StatusCode == http.StatusNotFound {
		return ""
	}
	wantStatus(c.t, r, 200)
	return readAll(c.t, r)
}

func decode[T any](t *testing.T, r *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		t.Fatalf("%s %s: decoding the answer: %v", r.Request.Method, r.Request.URL, err)
	}
	return v
}

type initiated struct {
	Key      string `json:"key"`
	UploadID string `json:"upload_id"`
}

// initiate starts an upload: with PUT for key, with POST when key is "".
func (c mpClient) initiate(key string, hdr ...string) initiated {
	c.t.Helper()
	method := http.MethodPut
	if key == "" {
		method = http.MethodPost
	}
	r := do(c.t, method, c.url(":multipart", key, ""), nil, hdr...)
	wantStatus(c.t, r, 200)
	v := decode[initiated](c.t, r)
	if v.UploadID == "" || (key != "" && v.Key != key) || v.Key == "" {
		c.t.Fatalf("initiate %q: %+v", key, v)
	}
	return v
}

func (c mpClient) putPart(key, id string, n int, body string, hdr ...string) *http.Response {
	c.t.Helper()
	return do(c.t, "PUT", c.url(":multipart:parts", key, fmt.Sprintf("upload_id=%s&part_number=%d", id, n)), strings.NewReader(body), hdr...)
}

func (c mpClient) part(key, id string, n int, body string) string {
	c.t.Helper()
	r := c.putPart(key, id, n, body)
	wantStatus(c.t, r, 200)
	v := decode[struct{ ETag string }](c.t, r)
	if v.ETag == "" {
		c.t.Fatalf("part %d: no etag", n)
	}
	return v.ETag
}

type listed struct {
	Parts []struct {
		Number       int    `json:"part_number"`
		ETag         string `json:"etag"`
		LastModified string `json:"last_modified"`
		Size         int64  `json:"size"`
	} `json:"parts"`
	Truncated bool `json:"is_truncated"`
	Next      *int `json:"next_part_number_marker"`
}

func (c mpClient) list(key, id, query string) listed {
	c.t.Helper()
	q := "upload_id=" + id
	if query != "" {
		q += "&" + query
	}
	r := do(c.t, "GET", c.url(":multipart:parts", key, q), nil)
	wantStatus(c.t, r, 200)
	return decode[listed](c.t, r)
}

type ref struct {
	Number int    `json:"part_number"`
	ETag   string `json:"etag"`
}

type completed struct {
	Key   string `json:"key"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c mpClient) completeRaw(key, id string, body string) *http.Response {
	c.t.Helper()
	return do(c.t, "POST", c.url(":multipart:complete", key, "upload_id="+id), strings.NewReader(body), "Content-Type", "application/json")
}

func (c mpClient) complete(key, id string, parts ...ref) completed {
	c.t.Helper()
	b, _ := json.Marshal(map[string][]ref{"parts": parts})
	r := c.completeRaw(key, id, string(b))
	wantStatus(c.t, r, 200)
	return decode[completed](c.t, r)
}

func (c mpClient) abort(key, id string) *http.Response {
	c.t.Helper()
	return do(c.t, "DELETE", c.url(":multipart", key, "upload_id="+id), nil)
}

// TestMultipartRoundTrip: parts put out of order, listed page by page and
// completed make the object, with the metadata given at initiate; the
// upload is gone after.
func TestMultipartRoundTrip(t *testing.T) {
	ts, clk := open(t)
	c := mpClient{t, ts.URL, "testing/org=42"}
	up := c.initiate("dir/big",
		"Content-Type", "text/plain", "x-sn-origin", "10.0.0.1",
		"x-sn-expiration", "ttl:1h", "x-snme-color", "blue", "x-sn-filename", "big.txt")
	bodies := []string{"alpha-", "bravo-", "charlie-", "delta-", "echo"}
	etags := make([]string, len(bodies))
	for _, i := range []int{3, 0, 4, 2, 1} {
		etags[i] = c.part(up.Key, up.UploadID, i+1, bodies[i])
	}
	// Pages of two, then the rest.
	var got []int
	marker := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("list-parts never ends")
		}
		l := c.list(up.Key, up.UploadID, "max_parts=2"+marker)
		for _, p := range l.Parts {
			got = append(got, p.Number)
			if p.ETag != etags[p.Number-1] || p.Size != int64(len(bodies[p.Number-1])) || p.LastModified == "" {
				t.Errorf("listed part %+v, want etag %s and size %d", p, etags[p.Number-1], len(bodies[p.Number-1]))
			}
		}
		if !l.Truncated {
			if l.Next != nil {
				t.Errorf("last page has a next marker %d", *l.Next)
			}
			break
		}
		if l.Next == nil {
			t.Fatal("truncated page without a next marker")
		}
		marker = fmt.Sprintf("&part_number_marker=%d", *l.Next)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("listed parts %v, want 1 to 5", got)
	}
	// The object is not there before the complete.
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/org=42/dir/big", nil), 404)

	clk.add(time.Minute) // the time-to-live counts from the complete
	var refs []ref
	for i, e := range etags {
		refs = append(refs, ref{i + 1, e})
	}
	if res := c.complete(up.Key, up.UploadID, refs...); res.Key != "dir/big" || res.Error != nil {
		t.Fatalf("complete: %+v", res)
	}
	r := do(t, "GET", ts.URL+"/v1/objects/testing/org=42/dir/big", nil)
	wantStatus(t, r, 200)
	if got, want := readAll(t, r), strings.Join(bodies, ""); got != want {
		t.Fatalf("GET = %q, want %q", got, want)
	}
	h := r.Header
	if h.Get("Content-Type") != "text/plain" || h.Get("x-sn-origin") != "10.0.0.1" || h.Get("x-snme-color") != "blue" ||
		!strings.Contains(h.Get("Content-Disposition"), "big.txt") || h.Get("Content-Length") != "30" {
		t.Errorf("metadata after complete: %v", h)
	}
	created, err1 := time.Parse(time.RFC3339Nano, h.Get("x-sn-time-created"))
	expires, err2 := time.Parse(time.RFC3339Nano, h.Get("x-sn-time-expires"))
	if err1 != nil || err2 != nil || !created.Equal(clk.now()) || !expires.Equal(clk.now().Add(time.Hour)) {
		t.Errorf("created %v, expires %v (%v %v): want %v and an hour after", created, expires, err1, err2, clk.now())
	}
	// The upload is done: it lists, completes and aborts as unknown.
	wantStatus(t, do(t, "GET", c.url(":multipart:parts", up.Key, "upload_id="+up.UploadID), nil), 404)
	wantStatus(t, c.completeRaw(up.Key, up.UploadID, `{"parts":[{"part_number":1,"etag":"x"}]}`), 404)
	wantStatus(t, c.abort(up.Key, up.UploadID), 404)

	// A key the server makes, and a complete that replaces an object.
	up = c.initiate("")
	if !strings.Contains(up.Key, "-") {
		t.Errorf("server-made key %q is not a UUID", up.Key)
	}
	e := c.part(up.Key, up.UploadID, 1, "made")
	if res := c.complete(up.Key, up.UploadID, ref{1, e}); res.Key != up.Key {
		t.Fatalf("complete: %+v", res)
	}
	if got := c.object(up.Key); got != "made" {
		t.Fatalf("GET = %q", got)
	}
	up2 := c.initiate(up.Key)
	e = c.part(up.Key, up2.UploadID, 7, "again")
	if res := c.complete(up.Key, up2.UploadID, ref{7, e}); res.Key != up.Key {
		t.Fatalf("complete: %+v", res)
	}
	if got := c.object(up.Key); got != "again" {
		t.Fatalf("GET after a second upload = %q", got)
	}
}

// TestMultipartSubset: the complete names the parts that make the object;
// parts left out are not in it, and are removed with the upload.
func TestMultipartSubset(t *testing.T) {
	ts, _ := open(t)
	c := mpClient{t, ts.URL, "testing/_"}
	up := c.initiate("k")
	e1 := c.part("k", up.UploadID, 1, "one")
	c.part("k", up.UploadID, 2, "two")
	e3 := c.part("k", up.UploadID, 3, "three")
	if res := c.complete("k", up.UploadID, ref{1, e1}, ref{3, e3}); res.Error != nil {
		t.Fatalf("complete: %+v", res.Error)
	}
	if got := c.object("k"); got != "onethree" {
		t.Fatalf("GET = %q", got)
	}
}

// TestMultipartAbort: an aborted upload's parts are gone, and the upload
// is unknown after.
func TestMultipartAbort(t *testing.T) {
	st := newStore(t)
	ts := serveDriver(t, st)
	c := mpClient{t, ts.URL, "testing/org=42"}
	wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/k", strings.NewReader("old")), 200)
	up := c.initiate("k")
	e := c.part("k", up.UploadID, 1, "a")
	c.part("k", up.UploadID, 2, "b")
	wantStatus(t, c.abort("k", up.UploadID), 204)
	wantStatus(t, do(t, "GET", c.url(":multipart:parts", "k", "upload_id="+up.UploadID), nil), 404)
	wantStatus(t, c.completeRaw("k", up.UploadID, `{"parts":[{"part_number":1,"etag":"`+e+`"}]}`), 404)
	wantStatus(t, c.putPart("k", up.UploadID, 3, "c"), 404)
	wantStatus(t, c.abort("k", up.UploadID), 404)
	if got := c.object("k"); got != "old" {
		t.Fatalf("the object under the key after an abort: %q", got)
	}
	// Nothing of the upload is left in the store.
	keys, err := listKeys(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || strings.Contains(keys[0], "_osmp.") {
		t.Fatalf("stored after an abort: %v, want only the object", keys)
	}
}

// TestMultipartRefusals: each malformed request is a 4xx that names what
// is wrong, and stores nothing.
func TestMultipartRefusals(t *testing.T) {
	ts, _ := open(t)
	c := mpClient{t, ts.URL, "testing/org=42"}
	up := c.initiate("k")
	id := up.UploadID
	e1 := c.part("k", id, 1, "one")
	e2 := c.part("k", id, 2, "two")

	for _, q := range []string{
		"upload_id=u&part_number=1",
		"upload_id=" + strings.ToUpper(id) + "&part_number=1",
		"part_number=1",
		"upload_id=" + id,
		"upload_id=" + id + "&part_number=0",
		"upload_id=" + id + "&part_number=10001",
		"upload_id=" + id + "&part_number=%2B1",
		"upload_id=" + id + "&part_number=",
		"upload_id=" + id + "&part_number=1%3B",
	} {
		r := do(t, "PUT", c.url(":multipart:parts", "k", q), strings.NewReader("x"))
		if r.StatusCode != 400 {
			t.Errorf("put part ?%s: %d, want 400", q, r.StatusCode)
		}
	}
	for _, q := range []string{"max_parts=0", "max_parts=1001", "max_parts=x", "part_number_marker=-1"} {
		r := do(t, "GET", c.url(":multipart:parts", "k", "upload_id="+id+"&"+q), nil)
		if r.StatusCode != 400 {
			t.Errorf("list ?%s: %d, want 400", q, r.StatusCode)
		}
	}
	// A part without a length.
	req, _ := http.NewRequest("PUT", c.url(":multipart:parts", "k", "upload_id="+id+"&part_number=3"), io.MultiReader(strings.NewReader("chunked")))
	req.ContentLength = -1
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusLengthRequired {
		t.Errorf("chunked part: %d, want 411", r.StatusCode)
	}
	// Content-MD5: a match is stored, a mismatch is 400 and not stored.
	sum := md5.Sum([]byte("three"))
	wantStatus(t, c.putPart("k", id, 3, "three", "Content-MD5", base64.StdEncoding.EncodeToString(sum[:])), 200)
	wantStatus(t, c.putPart("k", id, 4, "four", "Content-MD5", base64.StdEncoding.EncodeToString(sum[:])), 400)
	wantStatus(t, c.putPart("k", id, 4, "four", "Content-MD5", "not base64"), 400)
	for _, p := range c.list("k", id, "").Parts {
		if p.Number == 4 {
			t.Errorf("a part that failed its Content-MD5 is listed: %+v", p)
		}
	}
	// Completes that do not check out.
	for _, tc := range []struct {
		parts []ref
		code  string
	}{
		{[]ref{{1, e1}, {2, "wrong"}}, "InvalidPart"},
		{[]ref{{1, e1}, {5, e2}}, "InvalidPart"},
		{[]ref{{2, e2}, {1, e1}}, "InvalidPartOrder"},
		{[]ref{{1, e1}, {1, e1}}, "InvalidPartOrder"},
		{[]ref{{0, e1}}, "InvalidPartOrder"},
	} {
		res := c.complete("k", id, tc.parts...)
		if res.Error == nil || res.Error.Code != tc.code || res.Error.Message == "" {
			t.Errorf("complete %v: %+v, want error %s", tc.parts, res, tc.code)
		}
	}
	for _, body := range []string{`{"parts":[]}`, `{}`, `not json`} {
		wantStatus(t, c.completeRaw("k", id, body), 400)
	}
	wantStatus(t, c.completeRaw("k", id, `{"parts":[`+strings.Repeat(" ", 4<<20)+`]}`), http.StatusRequestEntityTooLarge)
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/org=42/k", nil), 404)

	// A part put again gets a new etag; the old one no longer completes.
	e1b := c.part("k", id, 1, "ONE")
	if e1b == e1 {
		t.Fatal("a part put again kept its etag")
	}
	if res := c.complete("k", id, ref{1, e1}); res.Error == nil || res.Error.Code != "InvalidPart" {
		t.Fatalf("complete with a replaced part's etag: %+v", res)
	}
	// The upload id is for this key and these scopes only.
	other := mpClient{t, ts.URL, "testing/org=43"}
	wantStatus(t, do(t, "GET", c.url(":multipart:parts", "k2", "upload_id="+id), nil), 404)
	wantStatus(t, do(t, "GET", other.url(":multipart:parts", "k", "upload_id="+id), nil), 404)
	wantStatus(t, other.putPart("k", id, 1, "x"), 404)
	wantStatus(t, other.abort("k", id), 404)
	wantStatus(t, do(t, "GET", (mpClient{t, ts.URL, "other/org=42"}).url(":multipart:parts", "k", "upload_id="+id), nil), 404)
	// Routes and methods.
	wantStatus(t, do(t, "GET", c.url(":multipart", "k", ""), nil), 405)
	wantStatus(t, do(t, "POST", c.url(":multipart:parts", "k", "upload_id="+id), nil), 405)
	wantStatus(t, do(t, "GET", c.url(":multipart:complete", "k", "upload_id="+id), nil), 405)
	wantStatus(t, do(t, "PUT", c.url(":multipart", "", ""), nil), 400)

	// After all that, the upload completes with what is stored.
	if res := c.complete("k", id, ref{1, e1b}, ref{2, e2}); res.Error != nil {
		t.Fatalf("complete: %+v", res.Error)
	}
	if got := c.object("k"); got != "ONEtwo" {
		t.Fatalf("GET = %q", got)
	}
}

// TestMultipartStateUnreachable: an upload's state lives under reserved
// names that no object key reaches.
func TestMultipartStateUnreachable(t *testing.T) {
	st := newStore(t)
	ts := serveDriver(t, st)
	c := mpClient{t, ts.URL, "testing/org=42"}
	up := c.initiate("k")
	c.part("k", up.UploadID, 1, "secret part")
	keys, err := listKeys(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("stored keys %v, want the upload's record and one part", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "testing/org=42/_osmp.") {
			t.Fatalf("upload state under %q, want beside its scopes' objects as _osmp.…", k)
		}
		name := strings.TrimPrefix(k, "testing/org=42/")
		for _, m := range []string{"GET", "HEAD"} {
			r := do(t, m, ts.URL+"/v1/objects/testing/org=42/"+name, nil)
			if r.StatusCode != 404 {
				t.Errorf("%s of the object key %q: %d, want 404", m, name, r.StatusCode)
			}
		}
		wantStatus(t, do(t, "DELETE", ts.URL+"/v1/objects/testing/org=42/"+name, nil), 204)
		wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/"+name, strings.NewReader("overwrite")), 200)
	}
	if l := c.list("k", up.UploadID, ""); len(l.Parts) != 1 || l.Parts[0].Size != int64(len("secret part")) {
		t.Fatalf("the upload after puts to its names as keys: %+v", l)
	}
}

// listKeys lists what a store holds, as "namespace/key".
func listKeys(st *filestash.Store) ([]string, error) {
	var keys []string
	err := st.List(context.Background(), func(ns, key string, _ *driver.Attributes) error {
		keys = append(keys, ns+"/"+key)
		return nil
	})
	return keys, err
}

// slowStore makes a put of more than a byte take 1.5 s: the assembly of a
// completed upload.
type slowStore struct{ *filestash.Store }

func (s slowStore) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	if size > 1 {
		time.Sleep(1500 * time.Millisecond)
	}
	return s.Store.Put(ctx, ns, key, r, size, a)
}

// TestMultipartKeepAlive: a complete that takes more than a second sends
// its 200 and a space a second until the answer, which then follows.
func TestMultipartKeepAlive(t *testing.T) {
	ts := serveDriver(t, slowStore{newStore(t)})
	c := mpClient{t, ts.URL, "testing/_"}
	up := c.initiate("k")
	e := c.part("k", up.UploadID, 1, "a")
	e2 := c.part("k", up.UploadID, 2, "b")
	r := c.completeRaw("k", up.UploadID, `{"parts":[{"part_number":1,"etag":"`+e+`"},{"part_number":2,"etag":"`+e2+`"}]}`)
	wantStatus(t, r, 200)
	body := readAll(t, r)
	if !strings.HasPrefix(body, " ") {
		t.Errorf("a slow complete's body %q does not start with a keep-alive space", body)
	}
	var res completed
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &res); err != nil || res.Key != "k" || res.Error != nil {
		t.Fatalf("slow complete: %q: %+v %v", body, res, err)
	}
	if got := c.object("k"); got != "ab" {
		t.Fatalf("GET = %q", got)
	}
}

// TestMultipartParallelParts: parts put at once are all listed and all
// make the object, whichever finishes first.
func TestMultipartParallelParts(t *testing.T) {
	ts, _ := open(t)
	c := mpClient{t, ts.URL, "testing/org=42"}
	up := c.initiate("k")
	const n = 40
	etags := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := c.url(":multipart:parts", "k", fmt.Sprintf("upload_id=%s&part_number=%d", up.UploadID, n-i))
			req, _ := http.NewRequest("PUT", u, strings.NewReader(fmt.Sprintf("[%02d]", n-i)))
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer r.Body.Close()
			var v struct{ ETag string }
			if err := json.NewDecoder(r.Body).Decode(&v); err != nil || r.StatusCode != 200 {
				errs <- fmt.Errorf("part %d: %d %v", n-i, r.StatusCode, err)
				return
			}
			etags[n-i-1] = v.ETag
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l := c.list("k", up.UploadID, ""); len(l.Parts) != n || l.Truncated {
		t.Fatalf("listed %d parts (truncated %v), want %d", len(l.Parts), l.Truncated, n)
	}
	var refs []ref
	var want strings.Builder
	for i, e := range etags {
		refs = append(refs, ref{i + 1, e})
		fmt.Fprintf(&want, "[%02d]", i+1)
	}
	if res := c.complete("k", up.UploadID, refs...); res.Error != nil {
		t.Fatalf("complete: %+v", res.Error)
	}
	if got := c.object("k"); got != want.String() {
		t.Fatalf("GET = %q, want %q", got, want.String())
	}
}

// TestMultipartZstd: the parts of a zstd upload are frames the client
// made; the object is served as stored, and records what it decodes to,
// as a zstd PUT's body does.
func TestMultipartZstd(t *testing.T) {
	ts, _ := open(t)
	c := mpClient{t, ts.URL, "testing/_"}
	up := c.initiate("z", "Content-Encoding", "zstd")
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := []string{strings.Repeat("a", 100_000), strings.Repeat("b", 50_000)}
	var refs []ref
	var stored string
	for i, p := range plain {
		z := string(enc.EncodeAll([]byte(p), nil))
		stored += z
		refs = append(refs, ref{i + 1, c.part("z", up.UploadID, i+1, z)})
	}
	if res := c.complete("z", up.UploadID, refs...); res.Error != nil {
		t.Fatalf("complete: %+v", res.Error)
	}
	r := do(t, "GET", ts.URL+"/v1/objects/testing/_/z", nil)
	wantStatus(t, r, 200)
	if got := readAll(t, r); got != stored {
		t.Fatalf("GET: %d bytes, want the %d stored", len(got), len(stored))
	}
	if r.Header.Get("Content-Encoding") != "zstd" || r.Header.Get(service.HeaderDecodedSize) != "150000" {
		t.Fatalf("headers %v: want zstd, decoded size 150000", r.Header)
	}
	// Again over the object: the parts go through a spool, counted there.
	up = c.initiate("z", "Content-Encoding", "zstd")
	z := enc.EncodeAll([]byte(plain[0]), nil)
	if res := c.complete("z", up.UploadID, ref{1, c.part("z", up.UploadID, 1, string(z))}); res.Error != nil {
		t.Fatalf("complete over the object: %+v", res.Error)
	}
	r = do(t, "HEAD", ts.URL+"/v1/objects/testing/_/z", nil)
	wantStatus(t, r, 204)
	if v := r.Header.Get(service.HeaderDecodedSize); v != "100000" {
		t.Fatalf("decoded size %q after a complete over the object, want 100000", v)
	}
	// Parts that are not zstd are stored as sent, without a decoded size.
	up = c.initiate("notz", "Content-Encoding", "zstd")
	e := c.part("notz", up.UploadID, 1, "not zstd at all")
	if res := c.complete("notz", up.UploadID, ref{1, e}); res.Error != nil {
		t.Fatalf("complete: %+v", res.Error)
	}
	r = do(t, "HEAD", ts.URL+"/v1/objects/testing/_/notz", nil)
	wantStatus(t, r, 204)
	if v := r.Header.Get(service.HeaderDecodedSize); v != "" {
		t.Fatalf("decoded size %q of parts that are not zstd", v)
	}
}

// FuzzMultipart runs an upload with whatever a client might send for its
// parts and its complete. Nothing panics or is a server error, every
// refusal is a JSON detail, a complete answers {"key"} or {"error"}, and a
// completed object is as long as the parts it names.
func FuzzMultipart(f *testing.F) {
	f.Add("part_number=1", []byte("hello"), "", `{"parts":[{"part_number":1,"etag":"$1"}]}`)
	f.Add("part_number=2&part_number=3", []byte("x"), "XUFAKrxLKna5cZ2REBfFkg==", `{"parts":[{"part_number":2,"etag":"$1"},{"part_number":2,"etag":"$1"}]}`)
	f.Add("part_number=10000&max_parts=1", []byte{}, "", `{"parts":[{"part_number":10000,"etag":"$1"}]}`)
	f.Add("part_number=1&upload_id=x", []byte("y"), "bad", `{"parts":[{"part_number":-1}]}`)
	f.Add("part_number=1", []byte("z"), "", `{"parts":[{"part_number":1,"etag":"$1"}],"parts":null}`)
	f.Fuzz(func(t *testing.T, query string, part []byte, md5 string, complete string) {
		srv, err := service.New(memstash.New(), service.WithoutAuth(), service.WithMaxBodySize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		call := func(method, target string, body []byte, hdr ...string) *httptest.ResponseRecorder {
			req, err := http.NewRequest(method, "http://objectstore.test"+target, bytes.NewReader(body))
			if err != nil {
				return nil
			}
			for i := 0; i+1 < len(hdr); i += 2 {
				if hdr[i+1] != "" {
					req.Header.Set(hdr[i], hdr[i+1])
				}
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s %.100q: %d %s", method, target, w.Code, w.Body.String())
			}
			if w.Code >= 400 && w.Body.Len() > 0 && !strings.HasPrefix(w.Body.String(), `{"detail":`) {
				t.Fatalf("%s %.100q: %d with a body that is not a JSON detail: %.200q", method, target, w.Code, w.Body.String())
			}
			return w
		}
		w := call("PUT", "/v1/objects:multipart/testing/_/k", nil)
		var up initiated
		if err := json.Unmarshal(w.Body.Bytes(), &up); err != nil || up.UploadID == "" {
			t.Fatalf("initiate: %s", w.Body.String())
		}
		q := "upload_id=" + up.UploadID + "&" + query
		etag := ""
		if w := call("PUT", "/v1/objects:multipart:parts/testing/_/k?"+q, part, "Content-MD5", md5); w != nil && w.Code == 200 {
			var v struct{ ETag string }
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.ETag == "" {
				t.Fatalf("put part: 200 %q", w.Body.String())
			}
			etag = v.ETag
		}
		if w := call("GET", "/v1/objects:multipart:parts/testing/_/k?"+q, nil); w != nil && w.Code == 200 {
			var l listed
			if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || (l.Truncated && l.Next == nil) {
				t.Fatalf("list parts: 200 %q (%v)", w.Body.String(), err)
			}
		}
		w = call("POST", "/v1/objects:multipart:complete/testing/_/k?upload_id="+up.UploadID, []byte(strings.ReplaceAll(complete, "$1", etag)))
		if w.Code != 200 {
			return
		}
		var res completed
		if err := json.Unmarshal(bytes.TrimSpace(w.Body.Bytes()), &res); err != nil || (res.Key == "") == (res.Error == nil) {
			t.Fatalf("complete: 200 %q (%v), want a key or an error", w.Body.String(), err)
		}
		if res.Key == "" {
			return
		}
		g := call("GET", "/v1/objects/testing/_/k", nil)
		if g.Code != 200 || !bytes.Equal(g.Body.Bytes(), part) {
			t.Fatalf("GET after complete: %d, %d bytes, want the one part's %d", g.Code, g.Body.Len(), len(part))
		}
	})
}

// flakyParts fails the reads of upload parts while fail is set, after the
// first: a store that breaks partway through an assembly.
type flakyParts struct {
	*filestash.Store
	fail  atomic.Bool
	reads atomic.Int32
}

func (f *flakyParts) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	if strings.Contains(key, "_osmp.") && f.fail.Load() && f.reads.Add(1) > 1 {
		return nil, nil, errors.New("the store is down")
	}
	return f.Store.Get(ctx, ns, key)
}

// TestMultipartFailedCompleteKeepsObject: a complete that cannot read a
// part answers an InternalError and changes nothing: the object under the
// key stays, and so does the upload, which completes once the store is
// back.
func TestMultipartFailedCompleteKeepsObject(t *testing.T) {
	st := &flakyParts{Store: newStore(t)}
	ts := serveDriver(t, st)
	c := mpClient{t, ts.URL, "testing/org=42"}
	wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/k", strings.NewReader("old")), 200)
	up := c.initiate("k")
	refs := []ref{{1, c.part("k", up.UploadID, 1, "new-")}, {2, c.part("k", up.UploadID, 2, "object")}}
	st.fail.Store(true)
	if res := c.complete("k", up.UploadID, refs...); res.Error == nil || res.Error.Code != "InternalError" {
		t.Fatalf("complete over a failing store: %+v", res)
	}
	if got := c.object("k"); got != "old" {
		t.Fatalf("the object after a failed complete: %q, want the old one", got)
	}
	st.fail.Store(false)
	if res := c.complete("k", up.UploadID, refs...); res.Error != nil {
		t.Fatalf("complete again: %+v", res.Error)
	}
	if got := c.object("k"); got != "new-object" {
		t.Fatalf("GET = %q", got)
	}
}
