package service_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExpiredUnsweptEverywhere: an object past its expiry that nothing has
// removed yet is gone for every route: HEAD, GET (with or without a
// Range, satisfiable or not) and PATCH are 404, a DELETE is 204, batch get
// and head are 404 parts; a PUT without a condition and a batch insert
// store a fresh object that carries nothing of the expired one.
func TestExpiredUnsweptEverywhere(t *testing.T) {
	ts, clk := open(t)
	base := ts.URL + "/v1/objects/testing/_/"
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		wantStatus(t, do(t, "PUT", base+k, strings.NewReader("old body"), "x-sn-expiration", "ttl:1 hours",
			"x-snme-old", "yes", "x-sn-origin", "1.2.3.4", "x-sn-filename", "old.txt", "Content-Type", "text/old"), 200)
	}
	clk.add(2 * time.Hour)
	for _, c := range []struct {
		method, key string
		hdr         []string
		want        int
	}{
		{"HEAD", "a", nil, 404}, {"GET", "a", nil, 404}, {"GET", "a", []string{"Range", "bytes=0-1"}, 404},
		{"GET", "a", []string{"Range", "bytes=100-"}, 404}, {"DELETE", "b", nil, 204}, {"GET", "b", nil, 404},
	} {
		wantStatus(t, do(t, c.method, base+c.key, nil, c.hdr...), c.want)
	}
	wantStatus(t, patch(t, base+"c", `{"extend_expiry":{"after":"1h","from":"now"}}`), http.StatusNotFound)
	wantStatus(t, do(t, "HEAD", base+"c", nil), http.StatusNotFound) // not revived

	wantStatus(t, do(t, "PUT", base+"d", strings.NewReader("new")), 200)
	r := do(t, "GET", base+"d", nil)
	wantStatus(t, r, 200)
	if got := readAll(t, r); got != "new" {
		t.Fatalf("GET d: %q", got)
	}
	for _, h := range []string{"x-snme-old", "x-sn-origin", "x-sn-filename", "x-sn-expiration", "x-sn-time-expires"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("PUT over an expired object: %s %q of the old one leaked", h, v)
		}
	}
	if ct, cd := r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"); ct != "application/octet-stream" || cd != "attachment" {
		t.Errorf("PUT over an expired object: Content-Type %q, Content-Disposition %q", ct, cd)
	}

	_, res := batch(t, ts.URL+"/v1/objects:batch/testing/_/", []op{
		{kind: "get", key: "e"}, {kind: "head", key: "e"}, {kind: "delete", key: "f"},
		{kind: "insert", key: "g", body: []byte("new g")}, {kind: "get", key: "g"},
	})
	want := []string{"404", "404", "204", "201", "200"}
	if len(res) != len(want) {
		t.Fatalf("batch: %+v", res)
	}
	for i, w := range want {
		if res[i].status != w {
			t.Errorf("batch op %d: %s, want %s", i, res[i].status, w)
		}
	}
	if res[0].body != "" || res[4].body != "new g" || res[4].hdr.Get("x-snme-old") != "" || res[4].hdr.Get("x-sn-origin") != "" {
		t.Errorf("batch: get of the expired %q, get of the inserted %q %v", res[0].body, res[4].body, res[4].hdr)
	}
}
