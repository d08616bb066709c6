package service_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/osauth"
)

type op struct {
	kind, key string
	hdr       map[string]string
	body      []byte
}

type result struct {
	index, status, key string
	hdr                textproto.MIMEHeader
	body               string
}

func batch(t *testing.T, url string, ops []op, hdr ...string) (*http.Response, []result) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, o := range ops {
		h := textproto.MIMEHeader{}
		if o.kind != "" {
			h["x-sn-batch-operation-kind"] = []string{o.kind}
		}
		if o.key != "" {
			h["x-sn-batch-operation-key"] = []string{o.key}
		}
		for k, v := range o.hdr {
			h[k] = []string{v}
		}
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(o.body)
	}
	mw.Close()
	r := do(t, "POST", url, &buf, append([]string{"Content-Type", mw.FormDataContentType()}, hdr...)...)
	if r.StatusCode != 200 {
		return r, nil
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("batch response Content-Type %q: want multipart/form-data, as objectstore answers", r.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var out []result
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		// The status as objectstore writes it, "200 OK": its clients
		// read the code from the first word.
		st := p.Header.Get("x-sn-batch-operation-status")
		code, reason, _ := strings.Cut(st, " ")
		if n, err := strconv.Atoi(code); err != nil || reason != http.StatusText(n) {
			t.Errorf("part status %q: want a code and its reason", st)
		}
		if cd := p.Header.Get("Content-Disposition"); cd != `form-data; name="part"` {
			t.Errorf("part Content-Disposition %q", cd)
		}
		out = append(out, result{p.Header.Get("x-sn-batch-operation-index"), code, p.Header.Get("x-sn-batch-operation-key"), p.Header, string(b)})
	}
	return r, out
}

func TestBatch(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects:batch/testing/org=1/"
	_, res := batch(t, u, []op{
		{kind: "insert", key: "a", body: []byte("alpha")},
		{kind: "insert", key: url.PathEscape("dir/b c"), hdr: map[string]string{"x-snme-color": "red", "Content-Type": "text/plain"}, body: []byte("beta")},
		{kind: "get", key: "a"},
		{kind: "head", key: url.PathEscape("dir/b c")},
		{kind: "delete", key: "a"},
		{kind: "get", key: "a"},
		{kind: "insert", key: "big", body: bytes.Repeat([]byte("x"), 1<<20+1)},
		{kind: "rename", key: "a"},
		{kind: "get", key: "a/../b"},
		{kind: "insert", body: []byte("keyless")},
		{kind: "head", key: "never-stored"},
		{kind: "get"},
		{key: "a"},
	})
	// Results of operations that ran carry their kind and key; a missing
	// object is such a result (404, no body); failures carry only the
	// index, the status and a JSON error.
	want := []struct{ status, kind, key, body string }{
		{"201", "insert", "a", ""}, {"201", "insert", "dir%2Fb%20c", ""}, {"200", "get", "a", "alpha"},
		{"204", "head", "dir%2Fb%20c", ""}, {"204", "delete", "a", ""}, {"404", "get", "a", ""},
		{"413", "", "", "error"}, {"400", "", "", "error"}, {"400", "", "", "error"}, {"201", "insert", "*", ""},
		{"404", "head", "never%2Dstored", ""}, {"400", "", "", "error"}, {"400", "", "", "error"},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r.index != strconv.Itoa(i) || r.status != w.status || r.hdr.Get("x-sn-batch-operation-kind") != w.kind {
			t.Errorf("result %d: index %s status %s kind %q (%s), want %d %s %q", i, r.index, r.status, r.hdr.Get("x-sn-batch-operation-kind"), r.body, i, w.status, w.kind)
		}
		switch {
		case w.key == "*":
			if len(r.key) != 36+4*2 { // a UUID, its four dashes percent-encoded
				t.Errorf("result %d: key %q, want a made UUID", i, r.key)
			}
		case r.key != w.key:
			t.Errorf("result %d: key %q, want %q", i, r.key, w.key)
		}
		switch w.body {
		case "error":
			var e struct{ Detail string }
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Detail == "" {
				t.Errorf("result %d: body %q, want a JSON error", i, r.body)
			}
		default:
			if r.body != w.body {
				t.Errorf("result %d: body %q, want %q", i, r.body, w.body)
			}
		}
	}
	if res[3].hdr.Get("x-snme-color") != "red" || res[3].hdr.Get("content-type") != "text/plain" {
		t.Errorf("head result headers %v", res[3].hdr)
	}
	if res[2].hdr.Get("content-type") != "application/octet-stream" || res[2].hdr.Get("x-sn-size") != "5" {
		t.Errorf("get result headers %v", res[2].hdr)
	}
	// The objects are the same as through the single-object routes.
	r := do(t, "GET", ts.URL+"/v1/objects/testing/org=1/dir/b%20c", nil)
	wantStatus(t, r, 200)
	if readAll(t, r) != "beta" {
		t.Fatal("batch insert not readable by GET")
	}
	// Not multipart, or with a key in the path: the whole request fails.
	wantStatus(t, do(t, "POST", u, strings.NewReader("x"), "Content-Type", "text/plain"), 400)
	wantStatus(t, do(t, "POST", u+"k", strings.NewReader("x")), 400)
}

func TestBatchLimit(t *testing.T) {
	ts, _ := open(t)
	ops := make([]op, 1002)
	for i := range ops {
		ops[i] = op{kind: "head", key: "k"}
	}
	// Every operation past the limit gets its own 413, as objectstore
	// answers them.
	_, res := batch(t, ts.URL+"/v1/objects:batch/testing/_/", ops)
	if len(res) != 1002 || res[999].status != "404" || res[1000].status != "413" || res[1001].status != "413" || res[1001].index != "1001" {
		t.Fatalf("%d results, last %+v", len(res), res[len(res)-1])
	}
}

func TestBatchAuth(t *testing.T) {
	f := openAuth(t)
	u := f.ts.URL + "/v1/objects:batch/testing/org=42;project=7/"
	ops := []op{{kind: "insert", key: "w", body: []byte("x")}, {kind: "get", key: "w"}, {kind: "delete", key: "w"}}
	r, _ := batch(t, u, ops)
	wantStatus(t, r, 400)
	r, _ = batch(t, u, ops, "x-os-auth", "Bearer nonsense")
	wantStatus(t, r, 401)
	r, _ = batch(t, u, ops, "x-os-auth", "Bearer "+f.token(t, []osauth.Scope{{Key: "org", Value: "1"}}, nil))
	wantStatus(t, r, 200) // authentic: judged per operation
	writeOnly := f.token(t, scopes, []osauth.Permission{osauth.Write})
	_, res := batch(t, u, ops, "x-os-auth", "Bearer "+writeOnly)
	if len(res) != 3 || res[0].status != "201" || res[1].status != "403" || res[2].status != "403" {
		t.Fatalf("write-only token: %+v", res)
	}
}
