package service

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// contentDisposition is the Content-Disposition objectstore serves every
// object with: "attachment", and the filename when there is one, in a
// quoted string that only ASCII can be in ('/' and '\' become '-', a name
// of dots only all dashes, other characters beyond visible ASCII '_', '"'
// escaped) and, for a filename beyond ASCII, also whole as RFC 8187's
// filename* parameter (UTF-8, percent-encoded).
func contentDisposition(filename string) string {
	if filename == "" {
		return "attachment"
	}
	dots := strings.Trim(filename, ".") == ""
	ascii := true
	var b strings.Builder
	b.WriteString(`attachment; filename="`)
	for _, r := range filename {
		switch {
		case r == '/' || r == '\\' || dots && r == '.':
			b.WriteByte('-')
		case r == '"':
			b.WriteString(`\"`)
		case r >= 0x80:
			ascii = false
			b.WriteByte('_')
		case r < 0x20 || r == 0x7f:
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	if !ascii {
		b.WriteString("; filename*=UTF-8''")
		for i := 0; i < len(filename); i++ {
			c := filename[i]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
				b.WriteByte(c)
				continue
			}
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// unsatisfiable answers a Range outside an object of size bytes as
// objectstore does: 416 with Content-Range "bytes */size" and
// Accept-Ranges, no metadata and no body.
func unsatisfiable(w http.ResponseWriter, size int64) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
}

// writeText answers as objectstore's health and readiness routes do: a
// short text/plain body ("OK", "Shutting down").
func writeText(w http.ResponseWriter, code int, text string) {
	h := w.Header()
	h[HeaderContentType] = []string{"text/plain; charset=utf-8"}
	h["Content-Type"] = nil
	h.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}
