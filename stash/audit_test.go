package stash_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// lyingSizes is a remote store that lies in its attributes the way a
// hostile server can lie in both its Content-Length and its metadata: it
// claims stored and decoded sizes (within the compression ratio a read
// trusts) for bytes it never sends. It is no driver.BytesKeeper: its bytes
// arrive over a connection.
type lyingSizes struct {
	driver.Driver
	size, stored int64
}

func (d lyingSizes) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := d.Driver.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	m := *a
	m.Size, m.StoredSize = d.size, d.stored
	return rc, &m, nil
}

// TestRetrieveLyingRemoteSizes: a compressed stash whose remote store
// claims 64 MiB stored that decode to 1 GiB (a ratio of 16, which a read
// trusts for its buffer) but sends a few hundred bytes is ErrIntegrity,
// and Retrieve allocates in the order of what arrived, never the 1 GiB
// claimed before a byte of it is there.
func TestRetrieveLyingRemoteSizes(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	good, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	p := stashtest.JSONPayload(64<<10, 3)
	s, err := good.Create(ctx, "lying", p, stash.Compress(stash.CompressionZstd))
	if err != nil {
		t.Fatal(err)
	}
	if s.Encoding != driver.EncodingZstd {
		t.Fatalf("stored as %q, want zstd", s.Encoding)
	}
	e, err := stash.New(stash.WithBackend(lyingSizes{Driver: store, size: 1 << 30, stored: 64 << 20}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := e.Retrieve(ctx, s.String())
	runtime.ReadMemStats(&after)
	if err == nil || got != nil {
		t.Fatalf("Retrieve returned data (%v)", err)
	}
	if !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("Retrieve: %v, want ErrIntegrity", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 40<<20 {
		t.Errorf("Retrieve allocated %d MiB for %d bytes received", n>>20, s.StoredSize)
	}
	// The stream path reads to the same error.
	r, err := e.Open(ctx, s.String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("Open: %v, want ErrIntegrity", err)
	}
}
