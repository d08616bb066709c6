package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/settings"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h               string
		size            int64
		start, end      int64
		ok, satisfiable bool
	}{
		{"bytes=0-9", 100, 0, 9, true, true},
		{"bytes=90-", 100, 90, 99, true, true},
		{"bytes=90-500", 100, 90, 99, true, true},
		{"bytes=-10", 100, 90, 99, true, true},
		{"bytes=-500", 100, 0, 99, true, true},
		{"bytes=100-", 100, 0, 0, true, false},
		{"bytes=-0", 100, 0, 0, true, false},
		{"bytes=5-2", 100, 0, 0, false, false},
		{"bytes=0-1,5-6", 100, 0, 0, false, false},
		{"items=0-1", 100, 0, 0, false, false},
		{"bytes=x-1", 100, 0, 0, false, false},
	} {
		s, e, ok, sat := parseRange(tc.h, tc.size)
		if s != tc.start || e != tc.end || ok != tc.ok || sat != tc.satisfiable {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, %v", tc.h, tc.size, s, e, ok, sat, tc.start, tc.end, tc.ok, tc.satisfiable)
		}
	}
	for _, tc := range []struct {
		header string
		match  bool
	}{
		{`"abc"`, true}, {`W/"abc"`, true}, {`"x", "abc"`, true}, {`*`, true}, {`"abcd"`, false},
	} {
		if got := etagMatch(tc.header, `"abc"`); got != tc.match {
			t.Errorf("etagMatch(%q) = %v", tc.header, got)
		}
	}
}

// TestRangeOfCorruptStash: a range of a stash that fails its check never
// arrives whole.
func TestRangeOfCorruptStash(t *testing.T) {
	be, dir := backend(t)
	keys := "--link-keys=" + linkKeys()
	data := randomBytes(512 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "bad")
	corrupt(t, dir, addr)
	base, _ := startServe(t, be, keys, "--no-api")
	link := mustCLI(t, nil, "share", be, keys, "--share-url", base+"/", addr)
	// A small range is still in the server's buffer when the check fails:
	// the connection closes before anything arrives. A large one arrives
	// in part, cut short before its last byte.
	for _, tc := range []struct {
		rng  string
		want int
	}{{"bytes=0-9", 10}, {"bytes=0-99999", 100000}} {
		req, _ := http.NewRequest(http.MethodGet, link, nil)
		req.Header.Set("Range", tc.rng)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if tc.want > 50000 {
				t.Errorf("Range %s of a corrupt stash: %v; want a 206 cut short", tc.rng, err)
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || err == nil || len(body) >= tc.want {
			t.Errorf("Range %s of a corrupt stash: %s, %d bytes, %v; want 206 cut short", tc.rng, resp.Status, len(body), err)
		}
	}
}

// TestListValue: --backend keeps each value as given, and openEngine splits
// them with the parser claimstash.OpenEnv splits CLAIMSTASH_BACKEND with.
func TestListValue(t *testing.T) {
	var l listValue
	in := []string{"file:///a,s3://?buckets=x,y&region=r", "/plain/dir, /abs/../rel", "mem://"}
	for _, v := range in {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(l, " ") != strings.Join(in, " ") {
		t.Errorf("listValue = %q, want %q", []string(l), in)
	}
	var got []string
	for _, v := range l {
		b, err := settings.ParseBackends(v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	want := []string{"file:///a", "s3://?buckets=x,y&region=r", "file:///plain/dir", "file:///rel", "mem://"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("backends %q, want %q", got, want)
	}
}

// readFromRecorder is a ResponseWriter with a ReadFrom of its own, as
// net/http's is (its sendfile path), counting the bodies it was handed.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	readFroms int
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFroms++
	return io.Copy(r.ResponseRecorder, src)
}

// TestAccessLogKeepsReadFrom: a body served from a file through the access
// log reaches the connection's own ReadFrom (sendfile, for net/http), and
// the log still counts its bytes.
func TestAccessLogKeepsReadFrom(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body := bytes.Repeat([]byte("0123456789"), 100_000)
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	h := accessLog(slog.New(slog.NewJSONHandler(&logged, nil)), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Error(err)
		}
		if _, err := io.Copy(w, f); err != nil {
			t.Error(err)
		}
	}))
	w := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/s/x", nil))
	if w.readFroms != 1 || !bytes.Equal(w.Body.Bytes(), body) {
		t.Errorf("the body reached ReadFrom %d times (want 1), %d bytes of %d", w.readFroms, w.Body.Len(), len(body))
	}
	var entry struct {
		Bytes  int64 `json:"bytes"`
		Status int   `json:"status"`
	}
	if err := json.Unmarshal(logged.Bytes(), &entry); err != nil || entry.Bytes != int64(len(body)) || entry.Status != http.StatusOK {
		t.Errorf("logged %s: want %d bytes, status 200 (%v)", logged.Bytes(), len(body), err)
	}
}
