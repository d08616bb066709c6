package service_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
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
