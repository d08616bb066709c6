package objectstash_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// TestRangedReadLies: a Get of an object larger than ParallelAbove reads
// it in ranges. A server that answers one of the later ranges with another
// range, the whole object, another version of the object (a different
// creation time) or a body shorter than its Content-Range fails the read
// with ErrIntegrity, never handing out bytes of the wrong place.
func TestRangedReadLies(t *testing.T) {
	obj := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes
	for _, lie := range []string{"honest", "shifted", "whole", "version", "short", "short-chunked"} {
		t.Run(lie, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Set("x-sn-size", "100")
				h.Set("x-sn-time-created", "2026-01-01T00:00:00.000000Z")
				var a, b int64
				if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err != nil {
					t.Errorf("request without a byte range: %q", r.Header.Get("Range"))
					return
				}
				b = min(b, 99)
				body := obj[a : b+1]
				if a > 0 {
					switch lie {
					case "shifted":
						a, b = a+1, min(b+1, 99)
						body = obj[a : b+1]
					case "whole":
						h.Set("Content-Length", "100")
						w.WriteHeader(http.StatusOK)
						w.Write(obj)
						return
					case "version":
						h.Set("x-sn-time-created", "2026-01-02T00:00:00.000000Z")
					case "short", "short-chunked":
						body = body[:len(body)-1]
					}
				}
				h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/100", a, b))
				if lie != "short-chunked" || a == 0 {
					h.Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.WriteHeader(http.StatusPartialContent)
				w.Write(body)
			}))
			defer ts.Close()
			s, err := objectstash.New(ts.URL, objectstash.WithParallelAbove(30), objectstash.WithPartSize(30))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readObject(s)
			if lie == "honest" {
				if err != nil || !bytes.Equal(got, obj) {
					t.Fatalf("honest server: %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, driver.ErrIntegrity) {
				t.Fatalf("read %d bytes, %v; want ErrIntegrity", len(got), err)
			}
		})
	}
}
