package service_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/objectstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// objectHarness runs stash/objectstash against this server over a loopback
// socket, with auth on and a token signed per request, over a file store.
// The conformance test lives here, not in stash/objectstash, so that nothing
// under stash/ imports the service, not even a test.
type objectHarness struct {
	tb      testing.TB
	dir     string
	ts      *httptest.Server
	signer  *osauth.Signer
	sync    bool
	options []objectstash.Option
	// wrap, when set, wraps the server's handler (to watch requests).
	wrap func(http.Handler) http.Handler
	// connState, when set, is the server's http.Server.ConnState.
	connState func(net.Conn, http.ConnState)
}

func newObjectHarness(_ context.Context, tb testing.TB) (stashtest.Harness, error) {
	return &objectHarness{tb: tb}, nil
}

func (h *objectHarness) Scheme() string { return objectstash.Scheme }

func (h *objectHarness) MakeDriver(context.Context) (driver.Driver, error) {
	keys := h.tb.TempDir()
	files, err := osauth.GenerateKey(keys, "conformance")
	if err != nil {
		return nil, err
	}
	if h.signer, err = osauth.NewSigner(files.Kid, files.Private); err != nil {
		return nil, err
	}
	kd, err := osauth.OpenKeyDir(keys, 0)
	if err != nil {
		return nil, err
	}
	h.dir = h.tb.TempDir()
	var fopts []filestash.Option
	if !h.sync {
		fopts = append(fopts, filestash.NoSync())
	}
	fs, err := filestash.New(h.dir, fopts...)
	if err != nil {
		return nil, err
	}
	s, err := service.New(fs, service.WithAuth(osauth.NewVerifier(kd)))
	if err != nil {
		return nil, err
	}
	var handler http.Handler = s
	if h.wrap != nil {
		handler = h.wrap(s)
	}
	h.ts = httptest.NewUnstartedServer(handler)
	h.ts.Config.ConnState = h.connState
	h.ts.Start()
	h.tb.Cleanup(func() { h.ts.Close(); fs.Close() })
	// A connect timeout above the default 100 ms: on loopback a dial fails
	// only when the race detector, on a busy 2-core machine, leaves the
	// dialing goroutine unscheduled that long (connection retries are
	// tested in objectstash).
	return objectstash.New(h.ts.URL, append([]objectstash.Option{objectstash.WithSigner(h.signer), objectstash.WithConnectTimeout(2 * time.Second)}, h.options...)...)
}

// engineOn returns an engine over d alone that never inlines (opts
// follow), closed at the end of the test.
func engineOn(t testing.TB, d driver.Driver, opts ...stash.Option) *stash.Engine {
	t.Helper()
	e, err := stash.New(append([]stash.Option{stash.WithBackend(d), stash.WithInlineMax(-1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Corrupt flips a stored byte in the server's file store: the service keeps
// claimstash's keys as they are, so the object is where filestash puts it.
func (h *objectHarness) Corrupt(_ context.Context, ns, key string) error {
	name := filepath.Join(h.dir, ns, filepath.FromSlash(key), filestash.DataFile)
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("corrupt %s/%s: nothing stored", ns, key)
	}
	b[len(b)/2] ^= 0x01
	return os.WriteFile(name, b, 0o600)
}

func (h *objectHarness) Close() {}

func TestObjectstashConformance(t *testing.T) {
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		return newObjectHarness(ctx, t)
	})
}

// TestObjectstashRanged reads objects of several parts through small parts,
// so the parallel ranged reads and their ordering are exercised.
func TestObjectstashRanged(t *testing.T) {
	var gets atomic.Int64
	h := &objectHarness{tb: t, options: []objectstash.Option{objectstash.WithParallelAbove(64 << 10), objectstash.WithPartSize(64 << 10), objectstash.WithConcurrency(3)},
		wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					gets.Add(1)
				}
				next.ServeHTTP(w, r)
			})
		}}
	d, err := h.MakeDriver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e := engineOn(t, d)
	ctx := context.Background()
	for _, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 1<<20 + 12345} {
		payload := stashtest.RandomPayload(n, uint64(n))
		s, err := e.Create(ctx, "ranged", payload, stash.Compress(stash.CompressionNone))
		if err != nil {
			t.Fatalf("Create %d: %v", n, err)
		}
		before := gets.Load()
		got, err := e.Retrieve(ctx, s.String())
		if err != nil {
			t.Fatalf("Retrieve %d: %v", n, err)
		}
		if string(got.Data) != string(payload) {
			t.Fatalf("Retrieve %d: other bytes", n)
		}
		// Up to the threshold one GET; above it the first 64 KiB and
		// then one GET per further 64 KiB part.
		want := int64(1)
		if n > 64<<10 {
			want = 1 + int64((n-(64<<10)+(64<<10)-1)/(64<<10))
		}
		if n == 0 {
			want = 2 // an empty object: the range is unsatisfiable, then a plain GET
		}
		if got := gets.Load() - before; got != want {
			t.Errorf("Retrieve %d: %d GETs, want %d", n, got, want)
		}
		// A reader closed half-way stops its fetches.
		r, err := e.Open(ctx, s.String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = r.Read(make([]byte, 100))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
