package service_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
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
		h := textproto.MIMEHeader{"x-sn-batch-operation-kind": {o.kind}}
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
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
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
		out = append(out, result{p.Header.Get("x-sn-batch-operation-index"), p.Header.Get("x-sn-batch-operation-status"), p.Header.Get("x-sn-batch-operation-key"), p.Header, string(b)})
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
	})
	want := []struct{ status, body string }{
		{"201", `{"key":"a"}`}, {"201", `{"key":"dir/b c"}`}, {"200", "alpha"}, {"204", ""}, {"204", ""},
		{"404", ""}, {"413", ""}, {"400", ""}, {"400", ""}, {"201", ""},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r.index != string(rune('0'+i)) || r.status != w.status {
			t.Errorf("result %d: index %s status %s (%s), want %d %s", i, r.index, r.status, r.body, i, w.status)
		}
		if w.body != "" && strings.TrimSpace(r.body) != w.body {
			t.Errorf("result %d: body %q, want %q", i, r.body, w.body)
		}
	}
	if res[3].hdr.Get("x-snme-color") != "red" || res[3].hdr.Get("content-type") != "text/plain" || res[3].key != "dir%2Fb%20c" {
		t.Errorf("head result headers %v", res[3].hdr)
	}
	if !strings.Contains(res[6].body, `"detail"`) {
		t.Errorf("413 result body %q: want a JSON error", res[6].body)
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
	ops := make([]op, 1001)
	for i := range ops {
		ops[i] = op{kind: "head", key: "k"}
	}
	_, res := batch(t, ts.URL+"/v1/objects:batch/testing/_/", ops)
	if len(res) != 1001 || res[1000].status != "413" || res[999].status != "404" {
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
