package service_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash/memstash"
)

// FuzzRequest sends the server whatever a client might: any method, path,
// query, metadata, range, encoding and body. Nothing panics, nothing is a
// server error (the store is memory, which does not fail), every error is
// the JSON detail objectstore's clients read, and an object that a PUT
// stored reads back as the bytes sent.
func FuzzRequest(f *testing.F) {
	for _, s := range [][6]string{
		{"PUT", "/v1/objects/testing/org=1;p=2/k", "ttl:1 days", "", "", "hello"},
		{"GET", "/v1/objects/testing/org=1;p=2/k", "", "bytes=1-3", "", ""},
		{"POST", "/v1/objects/testing/_/", "tti:30m", "", "zstd", "\x28\xb5\x2f\xfd\x00\x58\x00\x00"},
		{"PUT", "/v1/objects/testing/_/%2e%2e/%2e%2e/etc", "manual", "", "gzip", "x"},
		{"HEAD", "/v1/objects/testing/org=1%3Bp%3D2/k", "", "bytes=-0", "", ""},
		{"DELETE", "/v1/objects/testing/_/a//b", "", "", "", ""},
		{"POST", "/v1/objects:batch/testing/_/", "", "", "", "--x\r\n\r\n--x--"},
		{"PATCH", "/v1/objects/testing/_/k", "", "", "", `{"extend_expiry":"ttl:1h"}`},
		{"GET", "/v1/objects/testing/_/k?os_kid=x&os_sig=y", "ttl:99999999999999 years", "bytes=0-,1-2", "", ""},
		{"PUT", "/v1/objects:multipart/testing/_/k", "ttl:1h", "", "zstd", ""},
		{"PUT", "/v1/objects:multipart:parts/testing/_/k?upload_id=00000000-0000-4000-8000-000000000000&part_number=1", "", "", "", "part"},
		{"POST", "/v1/objects:multipart:complete/testing/_/k?upload_id=x", "", "", "", `{"parts":[{"part_number":1,"etag":"e"}]}`},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], []byte(s[5]))
	}
	spool := f.TempDir() // the server's spool for bodies of unknown length
	f.Fuzz(func(t *testing.T, method, target, expiration, rng, encoding string, body []byte) {
		srv, err := service.New(memstash.New(), service.WithoutAuth(), service.WithTempDir(spool), service.WithMaxBodySize(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, "http://objectstore.test"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		for k, v := range map[string]string{"x-sn-expiration": expiration, "Range": rng, "Content-Encoding": encoding} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		if method == "POST" && strings.Contains(target, ":batch") {
			req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		res := w.Result()
		if res.StatusCode >= 500 && res.StatusCode != http.StatusNotImplemented {
			t.Fatalf("%s %.100q: %d %s", method, target, res.StatusCode, w.Body.String())
		}
		if res.StatusCode >= 400 && method != "HEAD" && w.Body.Len() > 0 && !strings.HasPrefix(w.Body.String(), `{"detail":`) {
			t.Fatalf("%s %.100q: %d with a body that is not a JSON detail: %.200q", method, target, res.StatusCode, w.Body.String())
		}
		if method != "PUT" || res.StatusCode != http.StatusOK || encoding != "" || !strings.HasPrefix(target, "/v1/objects/") {
			return // only an object PUT stores what it was sent under its path
		}
		// A stored object reads back as sent, at the path it was put to.
		get, _ := http.NewRequest("GET", req.URL.String(), nil)
		g := httptest.NewRecorder()
		srv.ServeHTTP(g, get)
		if g.Code != http.StatusOK {
			if expiration != "" && g.Code == http.StatusNotFound {
				return // stored already expired (a zero or past lifetime)
			}
			t.Fatalf("GET after PUT %.100q: %d %s", target, g.Code, g.Body.String())
		}
		if got, _ := io.ReadAll(g.Result().Body); !bytes.Equal(got, body) {
			t.Fatalf("GET after PUT %.100q: %d bytes, not the %d sent", target, len(got), len(body))
		}
	})
}
