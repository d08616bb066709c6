package claimcheck_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
)

// Issue 11, item 1, through the checker: a claim-checked message whose
// share link (from a trusted host) has its fragment edited to claim 512
// MiB of zstd must not cost 512 MiB to refuse.
func TestRehydrateEditedLinkBoundsAllocation(t *testing.T) {
	ctx := context.Background()
	data := []byte(strings.Repeat("a kilobyte of payload; ", 45))[:1024]
	sum := sha256.Sum256(data)
	key := "p." + hex.EncodeToString(sum[:])
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	f, err := links.NewFetcher(links.TrustOrigins(srv.URL), links.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithLinkFetcher(f))
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e)
	if err != nil {
		t.Fatal(err)
	}
	frag := url.Values{"stash": {"mem://default/" + key}, "size": {"536870912"}, "enc": {"zstd"}}
	link := srv.URL + "/bucket/" + key + "#" + frag.Encode()
	h := claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: "1024"}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 4 {
		_, _, err = c.Rehydrate(ctx, "t", []byte(link), h)
	}
	runtime.ReadMemStats(&after)
	if !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("Rehydrate of an edited link: %v, want ErrIntegrity", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("4 Rehydrates of a 1 KiB link claiming 512 MiB allocated %d MiB, want at most 8", n>>20)
	}
}
