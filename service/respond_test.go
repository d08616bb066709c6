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
