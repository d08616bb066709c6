package service_test

import (
	"strings"
	"testing"
)

// TestResponseDetails: the details of objectstore's answers that its
// clients and browsers see.
func TestResponseDetails(t *testing.T) {
	ts, _ := open(t)
	base := ts.URL + "/v1/objects/testing/_/"
	wantStatus(t, do(t, "PUT", base+"plain", strings.NewReader("hello world")), 200)
	for _, method := range []string{"GET", "HEAD"} {
		r := do(t, method, base+"plain", nil)
		wantHeader(t, r, "Content-Disposition", "attachment")
		wantHeader(t, r, "Accept-Ranges", "bytes")
	}
	for filename, want := range map[string]string{
		"report.txt":   `attachment; filename="report.txt"`,
		`say "hi".txt`: `attachment; filename="say \"hi\".txt"`,
		"..":           `attachment; filename="--"`,
		`a/b\c`:        `attachment; filename="a-b-c"`,
		"ré/port.txt":  `attachment; filename="r_-port.txt"; filename*=UTF-8''r%C3%A9%2Fport.txt`,
	} {
		wantStatus(t, do(t, "PUT", base+"named", strings.NewReader("x"), "x-sn-filename", encodeHeader(filename)), 200)
		wantHeader(t, do(t, "GET", base+"named", nil), "Content-Disposition", want)
		wantHeader(t, do(t, "HEAD", base+"named", nil), "Content-Disposition", want)
	}

	// A Range outside the object: 416, the size in Content-Range, no
	// metadata, no body.
	r := do(t, "GET", base+"plain", nil, "Range", "bytes=11-")
	wantStatus(t, r, 416)
	wantHeader(t, r, "Content-Range", "bytes */11")
	wantHeader(t, r, "Accept-Ranges", "bytes")
	wantHeader(t, r, "x-sn-size", "")
	wantHeader(t, r, "Content-Type", "")
	if b := readAll(t, r); b != "" {
		t.Errorf("416 with a body %q", b)
	}

	// Ranges as objectstore reads them: the unit in any case, several
	// ranges served whole, anything malformed or in another unit a 400.
	for rng, want := range map[string]struct {
		code int
		body string
	}{
		"BYTES=0-4":     {206, "hello"},
		"bytes=6-100":   {206, "world"},
		"bytes=-5":      {206, "world"},
		"bytes=-100":    {206, "hello world"},
		"bytes=0-1,3-4": {200, "hello world"},
		"bytes=5-1":     {400, ""},
		"bytes=-0":      {400, ""},
		"bytes=x-":      {400, ""},
		"bytes=1":       {400, ""},
		"items=0-1":     {400, ""},
		"bytes=11-20":   {416, ""},
	} {
		r := do(t, "GET", base+"plain", nil, "Range", rng)
		b := readAll(t, r)
		if r.StatusCode != want.code || want.body != "" && b != want.body {
			t.Errorf("Range %s: %d %q, want %d %q", rng, r.StatusCode, b, want.code, want.body)
		}
		if r.StatusCode == 400 && (!strings.Contains(b, `"detail"`) || r.Header.Get("x-sn-size") != "") {
			t.Errorf("Range %s: 400 %q with x-sn-size %q: want a bare JSON error", rng, b, r.Header.Get("x-sn-size"))
		}
	}

	// Errors are JSON, labelled so.
	r = do(t, "PUT", ts.URL+"/v1/objects/testing/a=1;a=2/k", strings.NewReader("x"))
	wantStatus(t, r, 400)
	wantHeader(t, r, "Content-Type", "application/json")
}

// encodeHeader percent-encodes what a header cannot carry, as
// objectstore's clients do.
func encodeHeader(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x20 && c < 0x7f && c != '%' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}
