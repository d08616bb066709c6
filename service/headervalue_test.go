package service_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestMetadataValueDecoding: metadata, origin and filename values are
// percent-decoded as objectstore's clients decode them: a '%' that starts
// no escape is a literal (a client that does not encode may send "100%"),
// and it goes back out encoded, so the Python client reads "100%" again.
// A value that is not UTF-8 once decoded is refused: the Python client
// decodes strictly, so storing one would break every read of the object.
func TestMetadataValueDecoding(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/_/pct"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("x"),
		"x-snme-note", "100%", "x-snme-odd", "%zz and %4", "x-sn-origin", "50%", "x-sn-filename", "a%2Fb%"), 200)
	r := do(t, "HEAD", u, nil)
	wantStatus(t, r, http.StatusNoContent)
	for k, want := range map[string]string{
		"x-snme-note": "100%25", "x-snme-odd": "%25zz and %254", "x-sn-origin": "50%25", "x-sn-filename": "a/b%25",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	for _, bad := range [][2]string{
		{"x-snme-note", "%FF"},
		{"x-snme-note", "caf\xe9"},
		{"x-sn-origin", "%C3"},
		{"x-sn-filename", "%80.txt"},
	} {
		wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/_/bad", strings.NewReader("x"), bad[0], bad[1]), http.StatusBadRequest)
	}
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/_/bad", nil), http.StatusNotFound)
}

// TestDecodedSizeKeyOnPlainObjects: x-snme-claimstash-size is the decoded
// size of a zstd body only; on an object stored as sent it is the
// client's own metadata, kept and served back (it was dropped, or a 400
// when it was no number).
func TestDecodedSizeKeyOnPlainObjects(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/_/plain"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("x"), "x-snme-claimstash-size", "not a number"), 200)
	r := do(t, "HEAD", u, nil)
	if got := r.Header.Get("x-snme-claimstash-size"); got != "not a number" {
		t.Fatalf("x-snme-claimstash-size of a plain object: %q, want it kept", got)
	}
	wantStatus(t, do(t, "PUT", u, strings.NewReader("x"), "Content-Encoding", "zstd", "x-snme-claimstash-size", "not a number"), http.StatusBadRequest)
}
