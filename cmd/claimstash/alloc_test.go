package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes allocated while f runs (all goroutines).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// get of a share link whose fragment claims a size it does not send (60
// MB, under --verify-buffer, for a 1 KiB body) holds back only what
// arrives: it allocated the claimed size before reading a byte. To stdout
// and to a device alike; the link fails its check and nothing is written.
func TestGetLyingLinkBoundsAllocation(t *testing.T) {
	data := randomBytes(1 << 10)
	sum := sha256.Sum256(data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	addr := "mem://default/p." + hex.EncodeToString(sum[:])
	link := srv.URL + "/mem/default/p." + hex.EncodeToString(sum[:]) + "#" +
		url.Values{"stash": {addr}, "size": {"60000000"}, "enc": {"zstd"}}.Encode()
	for _, out := range []string{"", os.DevNull} {
		args := []string{"get", "--quiet", "--trusted-origins", srv.URL, link}
		if out != "" {
			args = append(args, "-o", out)
		}
		var stdout, stderr strings.Builder
		code := -1
		n := allocated(func() {
			code = run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		})
		if code == exitOK || stdout.Len() != 0 {
			t.Errorf("get -o %q of a lying link: exit %d, %d bytes out; want a failure and nothing written", out, code, stdout.Len())
		}
		if n > 16<<20 {
			t.Errorf("get -o %q of a 1 KiB link that claims 60 MB allocated %d MiB; want at most 16 (%s)", out, n>>20, strings.TrimSpace(stderr.String()))
		}
	}
}
