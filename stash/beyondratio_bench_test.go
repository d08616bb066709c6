package stash_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// BenchmarkRetrieveBeyondRatio: Retrieve of an 8 MiB stash that compresses
// more than 16 times (repetitive log lines), on mem. Such stashes are
// decoded twice by Retrieve: once to count (and, since the hostile-input
// hardening, hash) the output before its buffer is allocated, once into
// the buffer. The figure is the time per op; compare across commits.
func BenchmarkRetrieveBeyondRatio(b *testing.B) {
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	payload := bytes.Repeat([]byte("2026-12-01T14:00:00Z INFO order accepted id=000042 status=ok\n"), (8<<20)/61)
	s, err := e.Create(context.Background(), "log", payload)
	if err != nil {
		b.Fatal(err)
	}
	if s.StoredSize*16 >= s.Size {
		b.Fatalf("stored %d of %d bytes: not beyond the ratio", s.StoredSize, s.Size)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := e.Retrieve(ctx, s.String())
		if err != nil || len(got.Data) != len(payload) {
			b.Fatalf("Retrieve: %v", err)
		}
	}
}
