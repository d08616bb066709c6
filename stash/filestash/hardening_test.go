package filestash_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
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

// gatedStore holds every Stat until n of them have happened, so that n
// concurrent Creates all read the attributes before any of them writes.
type gatedStore struct {
	*filestash.Store
	gate *sync.WaitGroup
}

func (g gatedStore) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	a, err := g.Store.Stat(ctx, ns, key)
	g.gate.Done()
	g.gate.Wait()
	return a, err
}

// Issue 11, item 5, across processes: two Stores over one directory (as two
// processes would have: the in-process lock is per Store, so only flock
// stands between them) extend one stash concurrently; the latest expiry
// any Create was told must be the one stored.
func TestMonotonicExtendAcrossStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const n = 8
	var gate sync.WaitGroup
	engines := make([]*stash.Engine, 2)
	for i := range engines {
		s, err := filestash.New(dir, filestash.NoSync())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		e, err := stash.New(stash.WithBackend(gatedStore{s, &gate}), stash.WithInlineMax(-1))
		if err != nil {
			t.Fatal(err)
		}
		engines[i] = e
	}
	plain, err := filestash.New(dir, filestash.NoSync())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	check := newEngine(t, plain, stash.WithInlineMax(-1))
	payload := []byte("extended from two processes at once")
	for round := range 3 {
		name := fmt.Sprintf("shared-%d", round)
		first, err := check.Create(ctx, name, payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		gate.Add(n)
		told := make([]time.Time, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := engines[i%2].Create(ctx, name, payload, stash.TTL(time.Duration(2+i)*time.Hour))
				if err != nil {
					t.Errorf("Create %d: %v", i, err)
					return
				}
				told[i] = s.ExpiresAt
			}()
		}
		wg.Wait()
		latest := time.Time{}
		for _, x := range told {
			if x.After(latest) {
				latest = x
			}
		}
		got, err := check.Stat(ctx, first.String())
		if err != nil {
			t.Fatal(err)
		}
		if got.ExpiresAt.Before(latest) {
			t.Errorf("round %d: Creates were told the stash lives until %v; it is stored until %v", round, latest, got.ExpiresAt)
		}
	}
}
