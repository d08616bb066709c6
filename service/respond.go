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
	resetHeader(h)
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

// parseRange parses a Range header against an object of size bytes, as
// objectstore does: one "bytes=" range (the unit in any case); several
// ranges are not ok (the object is served whole); another unit or a
// malformed range ("bytes=5-1", "bytes=-0") is a 400. satisfiable is false
// for a range that starts past the end, and for any range of an empty
// object.
func parseRange(h string, size int64) (start, n int64, ok, satisfiable bool, err error) {
	v := strings.TrimSpace(h)
	if len(v) < len("bytes=") || !strings.EqualFold(v[:len("bytes=")], "bytes=") {
		unit, _, _ := strings.Cut(v, "=")
		return 0, 0, false, false, status(http.StatusBadRequest, "invalid Range header: unit %q, expected bytes", clip(unit))
	}
	spec := v[len("bytes="):]
	if strings.Contains(spec, ",") {
		return 0, 0, false, false, nil
	}
	bad := status(http.StatusBadRequest, "invalid Range header %q", clip(h))
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, false, bad
	}
	num := func(s string) (int64, bool) {
		if s == "" || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	switch {
	case a == "":
		last, okNum := num(b)
		if !okNum || last == 0 {
			return 0, 0, false, false, bad
		}
		if size == 0 {
			return 0, 0, true, false, nil
		}
		last = min(last, size)
		return size - last, last, true, true, nil
	case b == "":
		first, okNum := num(a)
		if !okNum {
			return 0, 0, false, false, bad
		}
		if first >= size {
			return 0, 0, true, false, nil
		}
		return first, size - first, true, true, nil
	}
	first, ok1 := num(a)
	end, ok2 := num(b)
	if !ok1 || !ok2 || first > end {
		return 0, 0, false, false, bad
	}
	if first >= size {
		return 0, 0, true, false, nil
	}
	end = min(end, size-1)
	return first, end - first + 1, true, true, nil
}

// resetHeader removes every header set so far.
func resetHeader(h http.Header) {
	for k := range h {
		delete(h, k)
	}
}
