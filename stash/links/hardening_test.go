package links_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"testing"

	"github.com/claimstash/claimstash/stash"
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

// lyingLink serves a 1 KiB payload at .../mem/default/<key>, as a presigned
// URL would, and returns a link to it whose fragment says what frag says.
func lyingLink(t *testing.T, data []byte, frag url.Values, hdr http.Header) (string, *stash.Engine) {
	t.Helper()
	srv := liar(t, func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data)
	})
	c := trusting(t, []string{srv.URL})
	base := digestLink(srv.URL, data)
	a, err := stash.ParseAddress("mem://default/" + base[len(srv.URL+"/mem/default/"):])
	if err != nil {
		t.Fatal(err)
	}
	frag.Set("stash", a.String())
	return base + "#" + frag.Encode(), c
}

// Issue 11, item 1: a share link's fragment must not set the allocation.
// Appending size=512 MiB and enc=zstd to a link of a 1 KiB payload used to
// make Retrieve allocate 512 MiB before it failed.
func TestLinkFragmentSizeBoundsAllocation(t *testing.T) {
	ctx := context.Background()
	data := payload(1 << 10)
	for _, c := range []struct {
		name string
		frag url.Values
		hdr  http.Header
		want error
	}{
		{"zstd", url.Values{"size": {"536870912"}, "enc": {"zstd"}}, nil, stash.ErrIntegrity},
		{"identity", url.Values{"size": {"536870912"}}, nil, stash.ErrIntegrity},
		// A server that describes its object (S3 returns the attributes
		// it stored) contradicts the fragment before a byte is read.
		{"described", url.Values{"size": {"536870912"}, "enc": {"zstd"}}, http.Header{
			"X-Amz-Meta-Claimstash": {fmt.Sprintf(`{"size":%d,"stored_size":%d,"digest":%q}`, len(data), len(data), hexSHA256(data))},
		}, stash.ErrIntegrity},
	} {
		t.Run(c.name, func(t *testing.T) {
			link, e := lyingLink(t, data, c.frag, c.hdr)
			var err error
			n := allocated(func() {
				for range 4 {
					_, err = e.Retrieve(ctx, link)
				}
			})
			if !errors.Is(err, c.want) {
				t.Errorf("Retrieve of a link with a lying fragment: %v, want %v", err, c.want)
			}
			if n > 8<<20 {
				t.Errorf("4 Retrieves of a 1 KiB link whose fragment claims 512 MiB allocated %d MiB, want at most 8", n>>20)
			}
		})
	}
	// The same link with an honest fragment still reads.
	link, e := lyingLink(t, data, url.Values{"size": {fmt.Sprint(len(data))}}, nil)
	if s, err := e.Retrieve(ctx, link); err != nil || string(s.Data) != string(data) {
		t.Fatalf("Retrieve of an honest link: %v", err)
	}
}

func hexSHA256(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}
