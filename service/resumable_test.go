package service_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash/driver"
)

// TestResumableDeclined: objectstore's Python client starts a big put
// (resumable_threshold_bytes, 256 MiB by default) with a PUT or POST of
// ?upload_type=resumable, an Upload-Length and no body, and falls back to
// a plain PUT when the server answers 501; it goes on with ?session=…
// chunks, probes and cancels. This server has no resumable uploads, so
// each of those is 501 and touches nothing: answered as plain object
// requests they stored an empty object over the one under the key (or
// the first chunk as the whole object), and the cancel deleted it.
func TestResumableDeclined(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/org=42/key"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("the object")), 200)
	for _, c := range []struct {
		method, query string
		body          string
		hdr           []string
	}{
		{"PUT", "?upload_type=resumable", "", []string{"Upload-Length", "1000"}},
		{"PUT", "?session=abc", "a chunk", []string{"Upload-Offset", "0"}},
		{"PUT", "?session=abc", "", []string{"Upload-Offset", "*"}},
		{"DELETE", "?session=abc", "", nil},
		{"PUT", "?upload_type=RESUMABLE", "", []string{"Upload-Length", "1000"}},
	} {
		r := do(t, c.method, u+c.query, strings.NewReader(c.body), c.hdr...)
		wantStatus(t, r, http.StatusNotImplemented)
		if got := readAll(t, do(t, "GET", u, nil)); got != "the object" {
			t.Fatalf("GET after %s %s: %q, want the object untouched", c.method, c.query, got)
		}
	}
	// A POST of one makes no object either.
	post := ts.URL + "/v1/objects/testing/org=42/"
	r := do(t, "POST", post+"?upload_type=resumable", bytes.NewReader(nil), "Upload-Length", "1000")
	wantStatus(t, r, http.StatusNotImplemented)
}

// plainDriver hides every optional interface of the driver it wraps,
// driver.Modifier among them.
type plainDriver struct{ driver.Driver }

// TestMultipartDeclined: over a driver without an atomic change of
// attributes (driver.Modifier) objectstore's multipart uploads are not
// served. Each request is 501 with a detail that says what to do instead,
// and touches nothing.
func TestMultipartDeclined(t *testing.T) {
	ts := serveDriver(t, plainDriver{newStore(t)})
	obj := ts.URL + "/v1/objects/testing/org=42/big"
	wantStatus(t, do(t, "PUT", obj, strings.NewReader("the object")), 200)
	mp := ts.URL + "/v1/objects:multipart/testing/org=42/"
	id := "upload_id=9f1c6f43-3a8e-4a43-9d56-2b8f3e7f1a10"
	parts := ts.URL + "/v1/objects:multipart:parts/testing/org=42/big?" + id
	for _, c := range []struct{ method, url, body string }{
		{"POST", mp, ""},
		{"PUT", mp + "big", ""},
		{"PUT", parts + "&part_number=1", "a part"},
		{"GET", parts, ""},
		{"POST", ts.URL + "/v1/objects:multipart:complete/testing/org=42/big?" + id, `{"parts":[{"part_number":1,"etag":"x"}]}`},
		{"DELETE", mp + "big?" + id, ""},
	} {
		r := do(t, c.method, c.url, strings.NewReader(c.body))
		var e struct{ Detail string }
		err := json.NewDecoder(r.Body).Decode(&e)
		r.Body.Close()
		if r.StatusCode != http.StatusNotImplemented || err != nil || !strings.Contains(e.Detail, "multipart uploads are not supported") {
			t.Errorf("%s %s: %d %q (%v), want 501 saying multipart uploads are not supported", c.method, c.url, r.StatusCode, e.Detail, err)
		}
		if got := readAll(t, do(t, "GET", obj, nil)); got != "the object" {
			t.Fatalf("GET after %s %s: %q, want the object untouched", c.method, c.url, got)
		}
	}
	// The path is checked as an object path first.
	wantStatus(t, do(t, "POST", ts.URL+"/v1/objects:multipart/testing/org=42;;/", nil), http.StatusBadRequest)
	wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects:multipart/testing/org=42/a/../b", nil), http.StatusBadRequest)
}
