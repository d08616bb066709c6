package objectstash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/objectstash"
)

const lyingKey = "org=42/obj.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// lying serves every GET with the given status, headers and body, written
// without a Content-Length (chunked) unless the headers set one.
func lying(t *testing.T, code int, body string, hdr ...string) *objectstash.Store {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
		w.(http.Flusher).Flush() // chunked: no Content-Length
	}))
	t.Cleanup(ts.Close)
	s, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readObject(s *objectstash.Store) ([]byte, error) {
	rc, _, err := s.Get(context.Background(), "ns", lyingKey)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestBodyNotItsSize: a body without a Content-Length that is longer or
// shorter than the object's size (x-sn-size, or the Content-Range of a
// 206) is ErrIntegrity, never read as the object.
func TestBodyNotItsSize(t *testing.T) {
	for _, c := range []struct {
		name string
		code int
		body string
		hdr  []string
	}{
		{"200 longer", 200, "0123456789extra", []string{"x-sn-size", "10"}},
		{"200 shorter", 200, "01234", []string{"x-sn-size", "10"}},
		{"206 longer", 206, "0123456789extra", []string{"x-sn-size", "10", "Content-Range", "bytes 0-9/10"}},
		{"206 shorter", 206, "01234", []string{"x-sn-size", "10", "Content-Range", "bytes 0-9/10"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readObject(lying(t, c.code, c.body, c.hdr...))
			if !errors.Is(err, driver.ErrIntegrity) {
				t.Fatalf("read %q, %v; want ErrIntegrity", got, err)
			}
		})
	}
}

// TestCutShort: a response whose connection drops mid-body (a server
// failing after its status went out) fails the read: never a short object.
func TestCutShort(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-sn-size", "100")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, strings.Repeat("x", 40))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer ts.Close()
	s, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readObject(s)
	if err == nil {
		t.Fatalf("read %d bytes of 100 without an error", len(got))
	}
}

// TestMetadataStrayPercent: objectstore's clients read a metadata value
// with a '%' that starts no escape (a server that stored it unencoded) as
// it is; so does the store, rather than dropping it.
func TestMetadataStrayPercent(t *testing.T) {
	s := lying(t, 200, "0123456789", "x-sn-size", "10", "Content-Length", "10",
		"x-snme-note", "100% and %41", "x-sn-origin", "5%")
	rc, a, err := s.Get(context.Background(), "ns", lyingKey)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if a.Metadata["note"] != "100% and A" || a.Origin != "5%" {
		t.Fatalf("metadata %q, origin %q; want %q and %q", a.Metadata["note"], a.Origin, "100% and A", "5%")
	}
}

// TestForeignZstdCountBounded: a zstd object without a decoded size is
// counted in memory, so a server claiming more stored bytes than that
// holds (300 MiB) is ErrTooLarge before any is read; one whose bytes are
// not zstd is ErrIntegrity.
func TestForeignZstdCountBounded(t *testing.T) {
	big := lying(t, 200, "never read", "x-sn-size", "314572800", "Content-Encoding", "zstd")
	if _, err := readObject(big); !errors.Is(err, driver.ErrTooLarge) {
		t.Errorf("300 MiB claimed: %v, want ErrTooLarge", err)
	}
	garbage := lying(t, 200, "not zstd!!", "x-sn-size", "10", "Content-Encoding", "zstd")
	if _, err := readObject(garbage); !errors.Is(err, driver.ErrIntegrity) {
		t.Errorf("not zstd: %v, want ErrIntegrity", err)
	}
}
