package filestash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

// Issue 11, item 6, as it was found: Creates of one payload (each
// extending its expiry) racing Deletes of it. No Create may fail: one that
// finds the stash gone writes it afresh.
func TestCreatesRacingDeletes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, filestash.NoSync())
	e := newEngine(t, s, stash.WithInlineMax(-1))
	payload := []byte("created and deleted at once")
	first, err := e.Create(ctx, "raced", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var deleters sync.WaitGroup
	for range 2 {
		deleters.Add(1)
		go func() {
			defer deleters.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := e.Delete(ctx, first.String()); err != nil && !errors.Is(err, stash.ErrNotFound) {
					t.Errorf("Delete: %v", err)
				}
			}
		}()
	}
	var creators sync.WaitGroup
	var created atomic.Int64
	for range 4 {
		creators.Add(1)
		go func() {
			defer creators.Done()
			for range 200 {
				if _, err := e.Create(ctx, "raced", payload, stash.TTL(time.Hour)); err != nil {
					t.Errorf("Create racing Deletes: %v", err)
					return
				}
				created.Add(1)
			}
		}()
	}
	creators.Wait()
	close(stop)
	deleters.Wait()
	if n := created.Load(); n != 800 {
		t.Errorf("%d of 800 Creates succeeded", n)
	}
}

// TestDamagedStashNeverReportedWritten: a stash directory left incomplete
// or damaged (a crash of a NoSync store, a file removed or planted by
// hand) is never reported as stored when nothing can read it. Stat says
// what Get says; a Create of the same content either writes it afresh
// (nothing readable was there) or fails with the damage, never succeeds
// with a stash that serves nothing.
func TestDamagedStashNeverReportedWritten(t *testing.T) {
	ctx := context.Background()
	payload := []byte("the payload of a stash that was damaged on disk")
	other := []byte("another stash, whose directory a link points to")
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir, stashDir, otherDir string)
		// heals: a Create writes the stash afresh; otherwise it fails
		// with this error, as Stat and Get do.
		heals bool
		want  error
	}{
		{name: "data-removed", heals: true, damage: func(t *testing.T, _, sd, _ string) {
			must(t, os.Remove(filepath.Join(sd, filestash.DataFile)))
		}},
		{name: "attributes-removed", heals: true, damage: func(t *testing.T, _, sd, _ string) {
			must(t, os.Remove(filepath.Join(sd, filestash.AttrsFile)))
		}},
		{name: "emptied-directory", heals: true, damage: func(t *testing.T, _, sd, _ string) {
			must(t, os.Remove(filepath.Join(sd, filestash.AttrsFile)))
			must(t, os.Remove(filepath.Join(sd, filestash.DataFile)))
		}},
		{name: "data-truncated", want: driver.ErrIntegrity, damage: func(t *testing.T, _, sd, _ string) {
			must(t, os.Truncate(filepath.Join(sd, filestash.DataFile), 3))
		}},
		{name: "link-to-another-stash", want: driver.ErrIntegrity, damage: func(t *testing.T, _, sd, od string) {
			must(t, os.RemoveAll(sd))
			// Relative, so that it stays inside the store (os.Root
			// follows it there).
			if err := os.Symlink(filepath.Base(od), sd); err != nil {
				t.Skipf("no symbolic links here: %v", err)
			}
		}},
		{name: "file-in-place", want: driver.ErrIntegrity, damage: func(t *testing.T, _, sd, _ string) {
			must(t, os.RemoveAll(sd))
			must(t, os.WriteFile(sd, payload, 0o600))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := filestash.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1))
			if err != nil {
				t.Fatal(err)
			}
			st, err := e.Create(ctx, "damaged", payload, stash.InNamespace("ns"))
			if err != nil {
				t.Fatal(err)
			}
			ot, err := e.Create(ctx, "other", other, stash.InNamespace("ns"))
			if err != nil {
				t.Fatal(err)
			}
			key, otherKey := st.Address.Key(), ot.Address.Key()
			tc.damage(t, dir, filepath.Join(dir, "ns", filepath.FromSlash(key)), filepath.Join(dir, "ns", filepath.FromSlash(otherKey)))

			want := tc.want
			if tc.heals {
				want = driver.ErrNotFound
			}
			if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, want) {
				t.Fatalf("Stat of the damaged stash: %v, want %v", err, want)
			}
			if _, _, err := s.Get(ctx, "ns", key); !errors.Is(err, want) {
				t.Fatalf("Get of the damaged stash: %v, want %v", err, want)
			}
			again, err := e.Create(ctx, "damaged", payload, stash.InNamespace("ns"))
			if !tc.heals {
				if err == nil {
					t.Fatalf("Create over the damaged stash reported %s written", again.Address)
				}
				if !errors.Is(err, want) {
					t.Fatalf("Create over the damaged stash: %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create over the incomplete stash: %v", err)
			}
			got, err := e.Retrieve(ctx, again.Address.String())
			if err != nil || !bytes.Equal(got.Data, payload) {
				t.Fatalf("Retrieve after Create over the incomplete stash: %v", err)
			}
			// The other stash is untouched.
			if got, err := e.Retrieve(ctx, ot.Address.String()); err != nil || !bytes.Equal(got.Data, other) {
				t.Fatalf("Retrieve of the other stash: %v", err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPutMakesAncestorsDurable: a Put into namespace and scope directories
// that exist but that this store did not create, as a concurrent Put or
// another process sharing the store leaves them until it fsyncs them,
// fsyncs every directory up to the store's before it returns: otherwise a
// crash could drop the scope directory's entry, and the stash with it,
// though its Put had succeeded. It does so once per directory, not on every
// Put.
func TestPutMakesAncestorsDurable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := filestash.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	synced := map[string]int{}
	filestash.SetSyncHook(s, func(d string) {
		mu.Lock()
		synced[d]++
		mu.Unlock()
	})
	// Created by someone else, not yet fsynced.
	must(t, os.MkdirAll(filepath.Join(dir, "ns", "org=1", "team=2"), 0o700))
	for i, data := range [][]byte{[]byte("first"), []byte("second")} {
		key := "org=1/team=2/" + keyFor("d", data)
		if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), attrsFor(data)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got := maps.Clone(synced)
		mu.Unlock()
		for _, d := range []string{"ns/org=1/team=2", "ns/org=1", "ns", "."} {
			want := 1
			if d == "ns/org=1/team=2" {
				want = i + 1 // the parent, for its new entry, every time
			}
			if got[d] != want {
				t.Errorf("after Put %d: directory %q fsynced %d times, want %d (fsynced: %v)", i+1, d, got[d], want, got)
			}
		}
	}
}

// goIdentifiers matches what encoding/json's errors say of Go types.
var goIdentifiers = regexp.MustCompile(`Go (struct|value)|int64|driver\.|Attributes|map\[`)

// TestDamagedAttributesNamedPlainly: attributes that do not decode are
// ErrIntegrity, with a message in the stored file's terms, naming no Go
// type (encoding/json's would: "Go struct field Attributes.size of type
// int64").
func TestDamagedAttributesNamedPlainly(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	data := []byte("attributes damaged")
	key := keyFor("a", data)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), attrsFor(data)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"size":"many"}`, `[]`, `{"metadata":{"k":1}}`} {
		must(t, os.WriteFile(filepath.Join(dir, "ns", key, filestash.AttrsFile), []byte(bad), 0o600))
		_, err := s.Stat(ctx, "ns", key)
		if !errors.Is(err, driver.ErrIntegrity) {
			t.Fatalf("Stat with attributes %s: %v, want ErrIntegrity", bad, err)
		}
		if goIdentifiers.MatchString(err.Error()) || !strings.HasPrefix(err.Error(), "stash: integrity check failed: filestash: ") {
			t.Errorf("Stat with attributes %s: %q names Go types or lacks the package", bad, err)
		}
	}
}
