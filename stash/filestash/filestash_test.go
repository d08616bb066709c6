package filestash_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// harness runs the conformance suite over a fresh directory per driver.
type harness struct {
	tb  testing.TB
	dir string
}

var (
	_ stashtest.Harness           = (*harness)(nil)
	_ stashtest.BenchHarnessMaker = newHarness
)

func newHarness(_ context.Context, tb testing.TB) (stashtest.Harness, error) {
	return &harness{tb: tb}, nil
}

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) {
	h.dir = h.tb.TempDir()
	return filestash.New(h.dir) // with fsync, as deployed
}

func (h *harness) Corrupt(_ context.Context, ns, key string) error {
	return corrupt(h.dir, ns, key)
}

func (h *harness) Close() {}

// corrupt flips one bit in the middle of a stash's stored bytes, as a disk
// would, leaving its attributes alone.
func corrupt(dir, ns, key string) error {
	name := filepath.Join(dir, ns, filepath.FromSlash(key), filestash.DataFile)
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("corrupt %s/%s: no stored bytes to flip", ns, key)
	}
	b[len(b)/2] ^= 0x01
	return os.WriteFile(name, b, 0o600)
}

func TestConformance(t *testing.T) {
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		return newHarness(ctx, t)
	})
}

func newStore(t *testing.T, opts ...filestash.Option) (*filestash.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := filestash.New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func newEngine(t *testing.T, s *filestash.Store, opts ...stash.Option) *stash.Engine {
	t.Helper()
	e, err := stash.New(append([]stash.Option{stash.WithBackend(s)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func keyFor(name string, data []byte) string {
	sum := sha256.Sum256(data)
	return name + "." + hex.EncodeToString(sum[:])
}

func attrsFor(data []byte) *driver.Attributes {
	sum := sha256.Sum256(data)
	return &driver.Attributes{
		Size: int64(len(data)), StoredSize: int64(len(data)), Digest: hex.EncodeToString(sum[:]),
		ContentType: "application/octet-stream", Metadata: map[string]string{"k": "v"},
		Origin: "test", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// visible lists every file and directory under dir whose path has no hidden
// component, relative to dir, with "/" separators.
func visible(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func listAll(t *testing.T, s *filestash.Store) []string {
	t.Helper()
	var out []string
	err := s.List(context.Background(), func(ns, key string, a *driver.Attributes) error {
		if a == nil || a.Digest == "" {
			t.Errorf("List gave %s/%s without attributes", ns, key)
		}
		out = append(out, ns+"/"+key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestEngineRoundTrip(t *testing.T) {
	t.Run("sync", func(t *testing.T) { testEngineRoundTrip(t) })
	t.Run("nosync", func(t *testing.T) { testEngineRoundTrip(t, filestash.NoSync()) })
}

func testEngineRoundTrip(t *testing.T, opts ...filestash.Option) {
	ctx := context.Background()
	s, dir := newStore(t, opts...)
	e := newEngine(t, s, stash.WithInlineMax(-1))
	json := bytes.Repeat([]byte(`{"id":12345,"name":"widget","tags":["a","b"]},`), 2000)
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"one", []byte("x")},
		{"json", json},
		{"random", randomBytes(t, 1<<20+17)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created, err := e.Create(ctx, tc.name, tc.payload,
				stash.InScopes(stash.Scope{Key: "org", Value: "42"}),
				stash.Metadata(map[string]string{"trace": "abc"}), stash.ContentType("application/json"))
			if err != nil {
				t.Fatal(err)
			}
			addr := created.Address.String()
			if !strings.HasPrefix(addr, "file://default/org=42/"+tc.name+".") {
				t.Fatalf("address %s", addr)
			}
			if _, err := os.Stat(filepath.Join(dir, "default", "org=42", tc.name+"."+created.Address.Digest, filestash.AttrsFile)); err != nil {
				t.Fatalf("layout: %v", err)
			}
			got, err := e.Retrieve(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, tc.payload) || got.Metadata["trace"] != "abc" || got.ContentType != "application/json" {
				t.Fatalf("retrieved %d bytes, metadata %v, type %q", len(got.Data), got.Metadata, got.ContentType)
			}
			r, err := e.Open(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(streamed, tc.payload) {
				t.Fatalf("Open: %d bytes, %v", len(streamed), err)
			}
			again, err := e.Create(ctx, tc.name, tc.payload, stash.InScopes(stash.Scope{Key: "org", Value: "42"}))
			if err != nil || again.Address.String() != addr {
				t.Fatalf("second create: %v, %v", again, err)
			}
			if err := e.Delete(ctx, addr); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Retrieve(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("after delete: %v, want ErrNotFound", err)
			}
			if err := e.Delete(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("second delete: %v, want ErrNotFound", err)
			}
		})
	}
	if got := listAll(t, s); len(got) != 0 {
		t.Fatalf("left after deletes: %v", got)
	}
}

func TestCorruptionDetected(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	e := newEngine(t, s, stash.WithInlineMax(-1))
	payload := randomBytes(t, 64<<10)
	created, err := e.Create(ctx, "victim", payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := corrupt(dir, created.Address.Namespace, created.Address.Key()); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Retrieve(ctx, created.Address.String()); !errors.Is(err, stash.ErrIntegrity) || got != nil {
		t.Fatalf("Retrieve of corrupted stash: %v, %v; want ErrIntegrity", got, err)
	}
	r, err := e.Open(ctx, created.Address.String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("streaming a corrupted stash: %v, want ErrIntegrity", err)
	}
}

func TestTruncatedDataIsIntegrityError(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	data := randomBytes(t, 1000)
	key := keyFor("t", data)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), attrsFor(data)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "ns", key, filestash.DataFile), 999); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "ns", key); !errors.Is(err, driver.ErrIntegrity) {
		t.Fatalf("Get of a truncated stash: %v, want ErrIntegrity", err)
	}
}

// failingReader yields n bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'z'
	}
	r.n -= k
	return k, nil
}

func TestFailedPutLeavesNothing(t *testing.T) {
	boom := errors.New("boom")
	data := bytes.Repeat([]byte{'z'}, 3<<20)
	key := "org=1/partial." + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		r      func(cancel context.CancelFunc) io.Reader
		size   int64
		wantIs error
	}{
		{"reader error", func(context.CancelFunc) io.Reader { return &failingReader{n: 2 << 20, err: boom} }, 3 << 20, boom},
		{"short", func(context.CancelFunc) io.Reader { return bytes.NewReader(data[:100]) }, 3 << 20, io.ErrUnexpectedEOF},
		{"long", func(context.CancelFunc) io.Reader { return bytes.NewReader(data) }, 1 << 20, nil},
		{"cancelled", func(cancel context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data[:1<<20]), readFunc(func(p []byte) (int, error) {
				cancel()
				return copy(p, data[:1]), nil
			}), bytes.NewReader(data))
		}, 3 << 20, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newStore(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := s.Put(ctx, "ns", key, tc.r(cancel), tc.size, attrsFor(nil))
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("Put: %v, want %v", err, tc.wantIs)
			}
			bg := context.Background()
			if _, err := s.Stat(bg, "ns", key); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Stat after failed Put: %v, want ErrNotFound", err)
			}
			if _, _, err := s.Get(bg, "ns", key); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("Get after failed Put: %v, want ErrNotFound", err)
			}
			if got := listAll(t, s); len(got) != 0 {
				t.Fatalf("List after failed Put: %v", got)
			}
			// Only the namespace and scope directories remain: no temp files.
			if got, want := visible(t, dir), []string{"ns", "ns/org=1"}; !equal(got, want) {
				t.Fatalf("store holds %v, want %v", got, want)
			}
			// The key is still free.
			if err := s.Put(bg, "ns", key, bytes.NewReader(data[:10]), 10, attrsFor(nil)); err != nil {
				t.Fatalf("Put after failed Put: %v", err)
			}
		})
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func TestInvalidAddressesRefused(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	s, err := filestash.New(dir, filestash.CreateDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	digest := strings.Repeat("0f", 32)
	good := "name." + digest
	for _, tc := range []struct{ ns, key string }{
		{"", good},
		{"..", good},
		{".", good},
		{"ns/..", good},
		{"/etc", good},
		{"ns", ""},
		{"ns", "../" + good},
		{"ns", "../../" + good},
		{"ns", "a=b/../../" + good},
		{"ns", "./" + good},
		{"ns", "/" + good},
		{"ns", "//" + good},
		{"ns", "a=b//" + good},
		{"ns", "..\\..\\" + good},
		{"ns", "a\\b=c/" + good},
		{"ns", "na\x00me." + digest},
		{"ns", ".tmp-x." + digest},
		{"ns", ".del-x"},
		{"ns", "name"},                          // no digest
		{"ns", "name." + digest + "/" + "data"}, // inside a stash directory
		{"ns", "name." + digest + "/" + filestash.AttrsFile},
		{"ns", "name.XYZ"},
		{"ns", "name." + strings.ToUpper(digest)},
		{"ns", "noscope/" + good},
		{"ns", "c:/" + good},
		{"NS", good},
		{"ns", strings.Repeat("a", 300) + "." + digest},
	} {
		t.Run(fmt.Sprintf("%q/%q", tc.ns, tc.key), func(t *testing.T) {
			data := []byte("payload")
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, driver.ErrInvalidAddress) {
					t.Errorf("%s: %v, want ErrInvalidAddress", op, err)
				}
			}
			check("Put", s.Put(ctx, tc.ns, tc.key, bytes.NewReader(data), int64(len(data)), attrsFor(data)))
			_, _, err := s.Get(ctx, tc.ns, tc.key)
			check("Get", err)
			_, err = s.Stat(ctx, tc.ns, tc.key)
			check("Stat", err)
			check("Delete", s.Delete(ctx, tc.ns, tc.key))
			check("UpdateAttributes", s.UpdateAttributes(ctx, tc.ns, tc.key, attrsFor(data)))
		})
	}
	if got := visible(t, parent); !equal(got, []string{"store"}) {
		t.Fatalf("refused calls created %v", got)
	}
}

func TestSymlinkOutOfStoreRefused(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "ns")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	data := []byte("secret")
	key := keyFor("x", data)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), attrsFor(data)); !errors.Is(err, driver.ErrInvalidAddress) {
		t.Errorf("Put through an escaping link: %v, want ErrInvalidAddress", err)
	}
	if got := visible(t, outside); len(got) != 0 {
		t.Fatalf("Put wrote outside the store: %v", got)
	}
	// A stash planted outside is not readable through the link either.
	if err := os.MkdirAll(filepath.Join(outside, key), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(attrsFor(data))
	os.WriteFile(filepath.Join(outside, key, filestash.AttrsFile), b, 0o600)
	os.WriteFile(filepath.Join(outside, key, filestash.DataFile), data, 0o600)
	if _, _, err := s.Get(ctx, "ns", key); !errors.Is(err, driver.ErrInvalidAddress) {
		t.Errorf("Get through an escaping link: %v, want ErrInvalidAddress", err)
	}
	if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, driver.ErrInvalidAddress) {
		t.Errorf("Stat through an escaping link: %v, want ErrInvalidAddress", err)
	}
	if err := s.Delete(ctx, "ns", key); err == nil {
		t.Error("Delete through an escaping link succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, key, filestash.DataFile)); err != nil {
		t.Errorf("the file outside was touched: %v", err)
	}
	if err := s.List(ctx, func(ns, key string, _ *driver.Attributes) error {
		return fmt.Errorf("List followed the link to %s/%s", ns, key)
	}); err != nil && !errors.Is(err, driver.ErrInvalidAddress) {
		t.Error(err)
	}
}

func TestPutExistingKeepsOriginal(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	data := []byte("first")
	key := keyFor("k", data)
	a := attrsFor(data)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(data), 5, a); err != nil {
		t.Fatal(err)
	}
	b := attrsFor(data)
	b.Origin = "second"
	if err := s.Put(ctx, "ns", key, strings.NewReader("other"), 5, b); !errors.Is(err, driver.ErrExists) {
		t.Fatalf("second Put: %v, want ErrExists", err)
	}
	rc, got, err := s.Get(ctx, "ns", key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	if string(body) != "first" || got.Origin != "test" || got.Metadata["k"] != "v" || !got.Created.Equal(a.Created) {
		t.Fatalf("after second Put: %q, %+v", body, got)
	}
	if got, want := visible(t, dir), []string{"ns", "ns/" + key, "ns/" + key + "/" + filestash.AttrsFile, "ns/" + key + "/" + filestash.DataFile}; !equal(got, want) {
		t.Fatalf("store holds %v, want %v", got, want)
	}
}

func TestUpdateAttributes(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	data := []byte("update me")
	key := "a=1/b=2/" + keyFor("u", data)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), attrsFor(data)); err != nil {
		t.Fatal(err)
	}
	na := attrsFor(data)
	na.TTI = time.Hour
	na.LastAccess = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na.ExpiresAt = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	na.Metadata = map[string]string{"new": "yes"}
	if err := s.UpdateAttributes(ctx, "ns", key, na); err != nil {
		t.Fatal(err)
	}
	got, err := s.Stat(ctx, "ns", key)
	if err != nil {
		t.Fatal(err)
	}
	if got.TTI != time.Hour || !got.LastAccess.Equal(na.LastAccess) || !got.ExpiresAt.Equal(na.ExpiresAt) || got.Metadata["new"] != "yes" || got.Metadata["k"] != "" {
		t.Fatalf("after update: %+v", got)
	}
	rc, _, err := s.Get(ctx, "ns", key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != string(data) {
		t.Fatalf("data after update: %q", body)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "ns", filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("stash directory holds %d entries, want 2 (no temp left)", len(ents))
	}
	missing := "a=1/" + keyFor("missing", data)
	if err := s.UpdateAttributes(ctx, "ns", missing, na); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("update of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ns", "a=1", keyFor("missing", data))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("update of a missing key created it: %v", err)
	}
}

func TestListAndSweep(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e := newEngine(t, s, stash.WithInlineMax(-1), stash.WithClock(clock))
	var want []string
	for i, ns := range []string{"alpha", "beta"} {
		for j, scopes := range [][]stash.Scope{nil, {{Key: "org", Value: "1"}}, {{Key: "org", Value: "1"}, {Key: "project", Value: "x.y"}}} {
			st, err := e.Create(ctx, fmt.Sprintf("s%d", j), []byte(fmt.Sprintf("payload %d %d", i, j)),
				stash.InNamespace(ns), stash.InScopes(scopes...), stash.TTL(time.Duration(i+1)*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ns+"/"+st.Address.Key())
		}
	}
	sort.Strings(want)
	// Things that are not stashes: a write in progress, a leftover delete,
	// stray files, a directory outside the grammar.
	tmp := filepath.Join(dir, "alpha", ".tmp-inprogress")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, filestash.DataFile), []byte("half"), 0o600)
	stale := filepath.Join(dir, "beta", ".tmp-crashed")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, filestash.DataFile), []byte("half"), 0o600)
	old := time.Now().Add(-filestash.StaleAfter - time.Minute)
	for _, p := range []string{filepath.Join(stale, filestash.DataFile), stale} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	del := filepath.Join(dir, "beta", "org=1", ".del-leftover")
	if err := os.MkdirAll(del, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(del, filestash.DataFile), []byte("gone"), 0o600)
	os.WriteFile(filepath.Join(dir, "alpha", "README"), []byte("hi"), 0o600)
	os.WriteFile(filepath.Join(dir, "stray"), []byte("hi"), 0o600)
	os.MkdirAll(filepath.Join(dir, "UPPER", "x."+strings.Repeat("0", 64)), 0o700)

	if got := listAll(t, s); !equal(got, want) {
		t.Fatalf("List:\n%v\nwant\n%v", got, want)
	}
	if _, err := os.Stat(del); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List left the interrupted delete: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Errorf("List removed a write in progress: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List left a stale temporary directory: %v", err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.List(ctx, func(string, string, *driver.Attributes) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List with a failing fn: %v after %d calls", err, calls)
	}

	now = now.Add(90 * time.Minute) // alpha's stashes (1h) expired, beta's (2h) not
	n, err := e.Sweep(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Sweep: %d, %v; want 3", n, err)
	}
	for _, k := range listAll(t, s) {
		if !strings.HasPrefix(k, "beta/") {
			t.Fatalf("Sweep left %s", k)
		}
	}
	if got := listAll(t, s); len(got) != 3 {
		t.Fatalf("after Sweep: %v", got)
	}
}

func TestConcurrentPutSameKey(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	data := randomBytes(t, 256<<10)
	key := "org=7/" + keyFor("race", data)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := attrsFor(data)
			a.Origin = fmt.Sprint("writer-", i)
			errs[i] = s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), a)
		}()
	}
	wg.Wait()
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, driver.ErrExists):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d Puts succeeded, want exactly 1", winners)
	}
	rc, a, err := s.Get(ctx, "ns", key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	if !bytes.Equal(body, data) || !strings.HasPrefix(a.Origin, "writer-") {
		t.Fatalf("got %d bytes from %q", len(body), a.Origin)
	}
	if got := visible(t, dir); len(got) != 5 { // ns, ns/org=7, the stash, its two files
		t.Fatalf("store holds %v", got)
	}
}

func TestConcurrentReadersAndDeletes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	e := newEngine(t, s, stash.WithInlineMax(-1))
	payload := randomBytes(t, 64<<10)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 30 {
				st, err := e.Create(ctx, "churn", payload, stash.Compress(stash.Compression(w%2)))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := e.Retrieve(ctx, st.Address.String())
				switch {
				case errors.Is(err, stash.ErrNotFound):
				case err != nil:
					t.Errorf("Retrieve: %v", err)
					return
				case !bytes.Equal(got.Data, payload):
					t.Error("Retrieve returned other bytes")
					return
				}
				if err := e.Delete(ctx, st.Address.String()); err != nil && !errors.Is(err, stash.ErrNotFound) {
					t.Errorf("Delete: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := "file://" + filepath.ToSlash(dir)
	for _, ok := range []string{good, good + "?nosync=true", good + "/new/sub?create_dir=1&nosync=false"} {
		d, err := stash.OpenDriver(ctx, ok)
		if err != nil {
			t.Errorf("%s: %v", ok, err)
			continue
		}
		d.Close()
	}
	if fi, err := os.Stat(filepath.Join(dir, "new", "sub")); err != nil || !fi.IsDir() {
		t.Errorf("create_dir did not create the directory: %v", err)
	}
	for _, bad := range []string{
		"file://",
		"file:///",
		"file:relative/dir",
		"file://relative/dir",
		"file://host" + filepath.ToSlash(dir),
		"file://user@" + filepath.ToSlash(dir),
		good + "/missing",
		good + "?dir=/tmp",
		good + "?nosync=maybe",
		good + "?nosync=1&nosync=0",
		good + "#frag",
	} {
		if d, err := stash.OpenDriver(ctx, bad); err == nil {
			d.Close()
			t.Errorf("%s: opened, want an error", bad)
		} else if bad != "file:///" && !strings.Contains(err.Error(), "filestash") {
			t.Errorf("%s: %v, want a filestash error", bad, err)
		}
	}
	// An engine opened by URL stores under the directory.
	e, err := stash.New(stash.WithBackendURL(ctx, good), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Create(ctx, "via-url", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "default", st.Address.Key(), filestash.DataFile)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	if _, err := filestash.New(""); err == nil {
		t.Error("New(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := filestash.New(f); err == nil {
		t.Error("New over a file succeeded")
	}
	if _, err := filestash.New(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "create_dir=true") {
		t.Errorf("New over a missing directory: %v, want ErrNotExist and how to have it made", err)
	}
	s, err := filestash.New(".")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(s.Dir()) {
		t.Errorf("Dir() = %q, want absolute", s.Dir())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data := []byte("late")
	if err := s.Put(context.Background(), "ns", keyFor("x", data), bytes.NewReader(data), 4, attrsFor(data)); err == nil {
		t.Error("Put after Close succeeded")
	}
}

func BenchmarkConformance(b *testing.B) {
	stashtest.RunBenchmarks(b, newHarness)
}

// BenchmarkDriver measures the driver alone (no hashing or compression): a
// durable Put, a Put without fsync, and a Get, of 1 MiB.
func BenchmarkDriver(b *testing.B) {
	ctx := context.Background()
	data := randomBytes(b, 1<<20)
	a := attrsFor(data)
	for _, bc := range []struct {
		name string
		opts []filestash.Option
	}{{"Put/sync", nil}, {"Put/nosync", []filestash.Option{filestash.NoSync()}}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := filestash.New(b.TempDir(), bc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				key := fmt.Sprintf("k%d.%s", i, a.Digest)
				i++
				if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Get", func(b *testing.B) {
		s, err := filestash.New(b.TempDir(), filestash.NoSync())
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		key := keyFor("k", data)
		if err := s.Put(ctx, "ns", key, bytes.NewReader(data), int64(len(data)), a); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, len(data))
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			rc, _, err := s.Get(ctx, "ns", key)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(rc, buf); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
}

// TestErrorWrappedOnce: a missing stash is reported with the operation and
// the address once, the driver's reason after it, and no path of the store.
func TestErrorWrappedOnce(t *testing.T) {
	s, dir := newStore(t)
	e := newEngine(t, s)
	addr := "file://other/orders." + strings.Repeat("0", 64)
	_, err := e.Retrieve(context.Background(), addr)
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Retrieve: %v; want ErrNotFound", err)
	}
	msg := err.Error()
	want := "stash: retrieve " + addr + ": not found: filestash: "
	if !strings.HasPrefix(msg, want) || strings.Count(msg, "stash: ") != 2 || strings.Count(msg, "orders.") != 1 || strings.Contains(msg, dir) {
		t.Fatalf("error %q: want %q then the system's reason, the address once, no store path", msg, want)
	}
}
