package service_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestIfRange: the server gives objects no validator (ETag, Last-Modified),
// so an If-Range can never match and a Range beside it is ignored: 200 with
// the whole object, never 206 of what may be another version of it.
func TestIfRange(t *testing.T) {
	ts, _ := open(t)
	u := ts.URL + "/v1/objects/testing/_/ifrange"
	wantStatus(t, do(t, "PUT", u, strings.NewReader("0123456789")), 200)
	for _, v := range []string{`"some-etag"`, "Tue, 01 Dec 2026 17:00:00 GMT"} {
		r := do(t, "GET", u, nil, "Range", "bytes=2-4", "If-Range", v)
		wantStatus(t, r, http.StatusOK)
		if got := readAll(t, r); got != "0123456789" || r.Header.Get("Content-Range") != "" {
			t.Errorf("If-Range %s: %q, Content-Range %q; want the whole object", v, got, r.Header.Get("Content-Range"))
		}
	}
	r := do(t, "GET", u, nil, "Range", "bytes=20-", "If-Range", `"x"`)
	wantStatus(t, r, http.StatusOK) // not 416: the range is ignored
	r = do(t, "GET", u, nil, "Range", "bytes=2-4")
	wantStatus(t, r, http.StatusPartialContent)
	if got := readAll(t, r); got != "234" || r.Header.Get("Content-Range") != "bytes 2-4/10" {
		t.Errorf("Range alone: %q, %q", got, r.Header.Get("Content-Range"))
	}
}
