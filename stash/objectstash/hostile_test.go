package objectstash_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// A server that answers a GET for a 1 KiB object with x-sn-size:
// 1073741824 (and a Content-Length of 1 KiB) must not make Retrieve
// allocate 1 GiB: the size a read's buffer starts at must be backed by the
// response (its Content-Length), not by a header the server can set to
// anything.
func TestLyingServerSizeBoundsAllocation(t *testing.T) {
	data := make([]byte, 1024)
	sum := sha256.Sum256(data)
	k := "lying." + hex.EncodeToString(sum[:])
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-sn-size", fmt.Sprint(1<<30))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data)
	}))
	defer ts.Close()
	s, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := e.Retrieve(context.Background(), objectstash.Scheme+"://ns/"+k)
	runtime.ReadMemStats(&after)
	if got != nil || !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("Retrieve from a lying server: %v, %v; want ErrIntegrity", got != nil, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("Retrieve allocated %d MiB for a response of 1 KiB; want at most 32 MiB", n>>20)
	}
}
