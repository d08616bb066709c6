package filestash_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
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

// rewriteAttrs edits the attribute file of a stash in place, as whoever can
// write the store's directory could.
func rewriteAttrs(t *testing.T, dir string, a stash.Address, edit func(*driver.Attributes)) {
	t.Helper()
	name := filepath.Join(dir, a.Namespace, filepath.FromSlash(a.Key()), "attrs.json")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var attrs driver.Attributes
	if err := json.Unmarshal(b, &attrs); err != nil {
		t.Fatal(err)
	}
	edit(&attrs)
	if b, err = json.Marshal(&attrs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue 11, item 2: attributes that lie about the size must not set the
// allocation. A 16-byte data file whose attributes said 256 MiB made
// Retrieve allocate 256 MiB before it failed.
func TestLyingAttributesBoundAllocation(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		edit func(*driver.Attributes)
	}{
		{"identity", func(a *driver.Attributes) { a.Size = 256 << 20 }},
		{"zstd", func(a *driver.Attributes) { a.Size, a.Encoding = 256<<20, driver.EncodingZstd }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, dir := newStore(t)
			e := newEngine(t, s, stash.WithInlineMax(-1))
			st, err := e.Create(ctx, "small", []byte("sixteen bytes!!!"))
			if err != nil {
				t.Fatal(err)
			}
			rewriteAttrs(t, dir, st.Address, c.edit)
			n := allocated(func() {
				for range 4 {
					_, err = e.Retrieve(ctx, st.String())
				}
			})
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("Retrieve with lying attributes: %v, want ErrIntegrity", err)
			}
			if n > 8<<20 {
				t.Errorf("4 Retrieves of a 16-byte stash whose attributes claim 256 MiB allocated %d MiB, want at most 8", n>>20)
			}
			if r, err := e.Open(ctx, st.String()); err == nil {
				_, err = r.Read(make([]byte, 64))
				r.Close()
				if err == nil {
					t.Errorf("Open with lying attributes read without error")
				}
			}
		})
	}
}
