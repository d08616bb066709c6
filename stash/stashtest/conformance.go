package stashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// RunConformanceTests runs the conformance suite against the backend that
// newHarness makes. Each test gets a harness and a driver of its own, and an
// Engine over that driver whose clock the test controls. Optional driver
// capabilities (driver.Updater, driver.Lister) change what is asserted, not
// whether a test runs: a backend without Updater, for example, must report
// the expiry it actually kept.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Run("Driver", func(t *testing.T) { testDriver(t, newHarness) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newHarness) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, newHarness) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newHarness) })
	t.Run("Stream", func(t *testing.T) { testStream(t, newHarness) })
	t.Run("Metadata", func(t *testing.T) { testMetadata(t, newHarness) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newHarness) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newHarness) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, newHarness) })
	t.Run("Corruption", func(t *testing.T) { testCorruption(t, newHarness) })
	t.Run("MonotonicExtend", func(t *testing.T) { testMonotonicExtend(t, newHarness) })
	t.Run("SweepVsCreate", func(t *testing.T) { testSweepVsCreate(t, newHarness) })
	t.Run("CreateVsDelete", func(t *testing.T) { testCreateVsDelete(t, newHarness) })
}

// epoch is where the fixture's clock starts; its nanoseconds check that
// drivers keep times exactly.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

type fixture struct {
	ctx   context.Context
	h     Harness
	d     driver.Driver
	e     *stash.Engine
	clock *Clock
}

// setup makes a harness, a driver and an engine over it with inline stashes
// disabled, so every payload reaches the backend.
func setup(t *testing.T, newHarness HarnessMaker, opts ...stash.Option) *fixture {
	t.Helper()
	return setupWith(t, func(ctx context.Context) (Harness, error) { return newHarness(ctx, t) }, opts...)
}

func setupWith(t testing.TB, newHarness func(context.Context) (Harness, error), opts ...stash.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	h, err := newHarness(ctx)
	if err != nil {
		t.Fatalf("making harness: %v", err)
	}
	t.Cleanup(h.Close)
	d, err := h.MakeDriver(ctx)
	if err != nil {
		t.Fatalf("making driver: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing driver: %v", err)
		}
	})
	clock := NewClock(epoch)
	all := append([]stash.Option{
		stash.WithBackend(d),
		stash.WithInlineMax(-1),
		stash.WithClock(clock.Now),
		stash.WithTempDir(t.TempDir()),
	}, opts...)
	e, err := stash.New(all...)
	if err != nil {
		t.Fatalf("stash.New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return &fixture{ctx: ctx, h: h, d: d, e: e, clock: clock}
}

func digest(p []byte) string {
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:])
}

func wantErr(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: got error %v, want one matching %v", what, err, target)
		}
	}
}

// testDriver checks the driver contract directly, without the engine.
func testDriver(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	ctx, d := f.ctx, f.d
	payload := RandomPayload(10_000, 1)
	key := "org=42/project=1337/orders." + digest(payload)
	attrs := &driver.Attributes{
		Size:        int64(len(payload)),
		StoredSize:  int64(len(payload)),
		Digest:      digest(payload),
		ContentType: "application/octet-stream",
		Metadata:    map[string]string{"trace-id": "abc", "Kind": "Order"},
		Origin:      "svc-a",
		Created:     epoch,
		ExpiresAt:   epoch.Add(time.Hour),
		TTI:         10 * time.Minute,
		LastAccess:  epoch.Add(time.Second),
	}

	t.Run("Missing", func(t *testing.T) {
		_, _, err := d.Get(ctx, "ns", key)
		wantErr(t, "Get of a missing key", err, driver.ErrNotFound)
		_, err = d.Stat(ctx, "ns", key)
		wantErr(t, "Stat of a missing key", err, driver.ErrNotFound)
		wantErr(t, "Delete of a missing key", d.Delete(ctx, "ns", key), driver.ErrNotFound)
		if u, ok := d.(driver.Updater); ok {
			wantErr(t, "UpdateAttributes of a missing key", u.UpdateAttributes(ctx, "ns", key, attrs), driver.ErrNotFound)
		}
	})

	t.Run("PutGet", func(t *testing.T) {
		if err := d.Put(ctx, "ns", key, bytes.NewReader(payload), int64(len(payload)), attrs); err != nil {
			t.Fatalf("Put: %v", err)
		}
		checkObject(t, d, "ns", key, payload, attrs)
		// The same key in another namespace is another object.
		_, err := d.Stat(ctx, "other", key)
		wantErr(t, "Stat in another namespace", err, driver.ErrNotFound)
	})

	t.Run("PutExisting", func(t *testing.T) {
		other := RandomPayload(len(payload), 2)
		a2 := *attrs
		a2.Origin = "svc-b"
		err := d.Put(ctx, "ns", key, bytes.NewReader(other), int64(len(other)), &a2)
		if err != nil && !errors.Is(err, driver.ErrExists) {
			t.Fatalf("Put of an existing key: got %v, want nil or ErrExists", err)
		}
		// Where the engine puts without looking first, ErrExists is
		// how it learns of the stash to extend: nil would lose that.
		if x, ok := d.(driver.ExclusivePutter); ok && x.ExclusivePut(int64(len(other))) && !errors.Is(err, driver.ErrExists) {
			t.Fatalf("Put of an existing key by a driver whose Put is exclusive: got %v, want ErrExists", err)
		}
		checkObject(t, d, "ns", key, payload, attrs)
	})

	t.Run("Update", func(t *testing.T) {
		u, ok := d.(driver.Updater)
		if !ok {
			t.Logf("%T is not a driver.Updater: nothing to check", d)
			return
		}
		a2 := *attrs
		a2.ExpiresAt = epoch.Add(2 * time.Hour)
		a2.LastAccess = epoch.Add(time.Minute)
		if err := u.UpdateAttributes(ctx, "ns", key, &a2); err != nil {
			t.Fatalf("UpdateAttributes: %v", err)
		}
		checkObject(t, d, "ns", key, payload, &a2)
		if err := u.UpdateAttributes(ctx, "ns", key, attrs); err != nil {
			t.Fatalf("UpdateAttributes: %v", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		l, ok := d.(driver.Lister)
		if !ok {
			t.Logf("%T is not a driver.Lister: nothing to check", d)
			return
		}
		empty := []byte{}
		k2 := "empty." + digest(empty)
		a2 := &driver.Attributes{Digest: digest(empty), Created: epoch}
		if err := d.Put(ctx, "ns2", k2, bytes.NewReader(empty), 0, a2); err != nil {
			t.Fatalf("Put of an empty object: %v", err)
		}
		seen := map[string]*driver.Attributes{}
		err := l.List(ctx, func(ns, k string, a *driver.Attributes) error {
			seen[ns+"/"+k] = a
			return nil
		})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(seen) != 2 || seen["ns/"+key] == nil || seen["ns2/"+k2] == nil {
			t.Fatalf("List saw %v, want ns/%s and ns2/%s", slicesKeys(seen), key, k2)
		}
		checkAttrs(t, "List", seen["ns/"+key], attrs)
		stop := errors.New("stop")
		calls := 0
		err = l.List(ctx, func(string, string, *driver.Attributes) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("List whose callback fails: got %v after %d calls, want the callback's error after 1", err, calls)
		}
		if err := d.Delete(ctx, "ns2", k2); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	})

	t.Run("FailedPut", func(t *testing.T) {
		k := "failed." + digest(payload)
		r := io.MultiReader(bytes.NewReader(payload[:1000]), iotest.ErrReader(errors.New("connection reset")))
		if err := d.Put(ctx, "ns", k, r, int64(len(payload)), attrs); err == nil {
			t.Fatalf("Put from a failing reader succeeded")
		}
		_, _, err := d.Get(ctx, "ns", k)
		wantErr(t, "Get after a failed Put", err, driver.ErrNotFound)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := d.Put(cctx, "ns", k, bytes.NewReader(payload), int64(len(payload)), attrs); err == nil {
			t.Fatalf("Put with a cancelled context succeeded")
		}
		_, _, err = d.Get(ctx, "ns", k)
		wantErr(t, "Get after a cancelled Put", err, driver.ErrNotFound)
	})

	t.Run("Delete", func(t *testing.T) {
		if err := d.Delete(ctx, "ns", key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		_, _, err := d.Get(ctx, "ns", key)
		wantErr(t, "Get after Delete", err, driver.ErrNotFound)
		wantErr(t, "second Delete", d.Delete(ctx, "ns", key), driver.ErrNotFound)
	})
}

func slicesKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func checkObject(t *testing.T, d driver.Driver, ns, key string, want []byte, attrs *driver.Attributes) {
	t.Helper()
	rc, a, err := d.Get(context.Background(), ns, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); cerr != nil {
		t.Errorf("closing Get's reader: %v", cerr)
	}
	if err != nil {
		t.Fatalf("reading Get: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Get returned %d bytes (sha256 %.12s), want %d (sha256 %.12s)", len(got), digest(got), len(want), digest(want))
	}
	checkAttrs(t, "Get", a, attrs)
	sa, err := d.Stat(context.Background(), ns, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkAttrs(t, "Stat", sa, attrs)
}

func checkAttrs(t *testing.T, what string, got, want *driver.Attributes) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil attributes", what)
		return
	}
	g, w := *got, *want
	if !maps.Equal(g.Metadata, w.Metadata) {
		t.Errorf("%s: metadata %v, want %v", what, g.Metadata, w.Metadata)
	}
	for _, c := range []struct {
		name string
		a, b time.Time
	}{{"Created", g.Created, w.Created}, {"ExpiresAt", g.ExpiresAt, w.ExpiresAt}, {"LastAccess", g.LastAccess, w.LastAccess}} {
		if !c.a.Equal(c.b) {
			t.Errorf("%s: %s %v, want %v", what, c.name, c.a, c.b)
		}
	}
	type plain struct {
		Size, StoredSize            int64
		Encoding                    driver.Encoding
		Digest, ContentType, Origin string
		TTI                         time.Duration
	}
	gp := plain{g.Size, g.StoredSize, g.Encoding, g.Digest, g.ContentType, g.Origin, g.TTI}
	wp := plain{w.Size, w.StoredSize, w.Encoding, w.Digest, w.ContentType, w.Origin, w.TTI}
	if gp != wp {
		t.Errorf("%s: attributes %+v, want %+v", what, gp, wp)
	}
}

type roundTrip struct {
	size         int
	compressible bool
	stream       bool // CreateFrom, else Create
	openOnly     bool // read back with Open only (no whole copy in memory)
	retrieveOnly bool // read back with Retrieve only
}

func (c roundTrip) String() string {
	kind, mode := "random", "bytes"
	if c.compressible {
		kind = "json"
	}
	if c.stream {
		mode = "stream"
	}
	return fmt.Sprintf("%s-%d-%s", kind, c.size, mode)
}

// testRoundTrip stores and reads back payloads from 0 bytes to 64 MiB, by
// Create and CreateFrom, and reads each back by Retrieve and Open.
func testRoundTrip(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	var cases []roundTrip
	for _, size := range []int{0, 1, 100, 4<<10 - 1, 4 << 10, 64<<10 + 1, 1 << 20, stash.DefaultSpoolMemory + 1} {
		for _, compressible := range []bool{false, true} {
			for _, stream := range []bool{false, true} {
				cases = append(cases, roundTrip{size: size, compressible: compressible, stream: stream})
			}
		}
	}
	cases = append(cases,
		roundTrip{size: 64 << 20, compressible: false, stream: true, openOnly: true},
		roundTrip{size: 64 << 20, compressible: true, stream: false, retrieveOnly: true},
	)
	for i, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			var payload []byte
			if c.compressible {
				payload = JSONPayload(c.size, uint64(i))
			} else {
				payload = RandomPayload(c.size, uint64(i))
			}
			name := fmt.Sprintf("rt-%d", i)
			var s *stash.Stash
			var err error
			if c.stream {
				s, err = f.e.CreateFrom(f.ctx, name, &chunkyReader{r: bytes.NewReader(payload), max: 100_003})
			} else {
				// The caller's buffer is the caller's again once Create
				// returns: the stash keeps its own copy.
				in := bytes.Clone(payload)
				s, err = f.e.Create(f.ctx, name, in)
				if len(in) > 0 {
					in[0], in[len(in)-1] = in[0]^0xff, in[len(in)-1]^0xff
				}
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			want := fmt.Sprintf("%s://%s/%s.%s", f.d.Scheme(), stash.DefaultNamespace, name, digest(payload))
			if got := s.Address.String(); got != want {
				t.Fatalf("address %s, want %s", got, want)
			}
			if s.Size != int64(c.size) {
				t.Errorf("Size %d, want %d", s.Size, c.size)
			}
			switch {
			case c.compressible && c.size > 64<<10:
				if s.Encoding != driver.EncodingZstd || s.StoredSize >= s.Size {
					t.Errorf("compressible payload stored as %q in %d bytes of %d, want zstd and smaller", s.Encoding, s.StoredSize, s.Size)
				}
			case !c.compressible:
				if s.Encoding != driver.EncodingIdentity || s.StoredSize != s.Size {
					t.Errorf("random payload stored as %q in %d bytes of %d, want identity", s.Encoding, s.StoredSize, s.Size)
				}
			}
			st, err := f.e.Stat(f.ctx, want)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st.Size != s.Size || st.StoredSize != s.StoredSize || st.Encoding != s.Encoding {
				t.Errorf("Stat: size %d/%d %q, want %d/%d %q", st.Size, st.StoredSize, st.Encoding, s.Size, s.StoredSize, s.Encoding)
			}
			if !c.openOnly {
				got, err := f.e.Retrieve(f.ctx, want)
				if err != nil {
					t.Fatalf("Retrieve: %v", err)
				}
				if !bytes.Equal(got.Data, payload) {
					t.Fatalf("Retrieve returned %d bytes (sha256 %.12s), want %d", len(got.Data), digest(got.Data), len(payload))
				}
				// What Retrieve returns is the caller's to change.
				if len(got.Data) > 0 {
					got.Data[0] ^= 0xff
					again, err := f.e.Retrieve(f.ctx, want)
					if err != nil || !bytes.Equal(again.Data, payload) {
						t.Fatalf("Retrieve after changing what the last one returned: %v", err)
					}
				}
			}
			if !c.retrieveOnly {
				readAll(t, f, want, payload, 32<<10+7)
			}
			if c.size > 32<<20 {
				// Do not hold 64 MiB payloads for the rest of the suite.
				if err := f.e.Delete(f.ctx, want); err != nil {
					t.Fatalf("Delete: %v", err)
				}
			}
		})
	}
}

// readAll opens address and checks that it streams exactly want, reading
// with a buffer of bufSize, and ends in a clean io.EOF.
func readAll(t *testing.T, f *fixture, address string, want []byte, bufSize int) {
	t.Helper()
	r, err := f.e.Open(f.ctx, address)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if r.Size() != int64(len(want)) {
		t.Errorf("Reader.Size %d, want %d", r.Size(), len(want))
	}
	buf := make([]byte, bufSize)
	off := 0
	for {
		n, err := r.Read(buf)
		if off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n]) {
			t.Fatalf("Open: bytes at %d..%d differ from the payload", off, off+n)
		}
		off += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Open: read at %d: %v", off, err)
		}
	}
	if off != len(want) {
		t.Fatalf("Open: EOF after %d bytes, want %d", off, len(want))
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF: %d, %v; want 0, EOF", n, err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// testIdempotent checks content addressing: creating the same payload again
// gives the same address and writes nothing.
func testIdempotent(t *testing.T, newHarness HarnessMaker) {
	for _, size := range []int{1000, stash.DefaultSpoolMemory + 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := setup(t, newHarness)
			payload := JSONPayload(size, 7)
			s1, err := f.e.Create(f.ctx, "orders", payload)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			a1, err := f.d.Stat(f.ctx, s1.Address.Namespace, s1.Address.Key())
			if err != nil {
				t.Fatalf("driver Stat: %v", err)
			}
			if !a1.Created.Equal(epoch) {
				t.Errorf("Created %v, want the clock's %v", a1.Created, epoch)
			}
			f.clock.Advance(time.Minute)
			s2, err := f.e.Create(f.ctx, "orders", payload)
			if err != nil {
				t.Fatalf("second Create: %v", err)
			}
			s3, err := f.e.CreateFrom(f.ctx, "orders", bytes.NewReader(payload))
			if err != nil {
				t.Fatalf("CreateFrom of the same payload: %v", err)
			}
			for _, s := range []*stash.Stash{s2, s3} {
				if s.Address.String() != s1.Address.String() {
					t.Errorf("address %s, want %s", s.Address, s1.Address)
				}
				if !s.Created.Equal(epoch) {
					t.Errorf("repeated create reports Created %v, want the first write's %v", s.Created, epoch)
				}
			}
			a2, err := f.d.Stat(f.ctx, s1.Address.Namespace, s1.Address.Key())
			if err != nil {
				t.Fatalf("driver Stat: %v", err)
			}
			if !a2.Created.Equal(a1.Created) {
				t.Errorf("a repeated create rewrote the stash: Created %v, was %v", a2.Created, a1.Created)
			}
			// Another name is another stash.
			s4, err := f.e.Create(f.ctx, "invoices", payload)
			if err != nil {
				t.Fatalf("Create under another name: %v", err)
			}
			if s4.Address.String() == s1.Address.String() {
				t.Errorf("two names share address %s", s4.Address)
			}
		})
	}
}

// testConcurrent creates one payload from many goroutines at once.
func testConcurrent(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	payload := JSONPayload(2<<20, 3)
	const n = 8
	addrs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s *stash.Stash
			var err error
			if i%2 == 0 {
				s, err = f.e.Create(f.ctx, "same", payload)
			} else {
				s, err = f.e.CreateFrom(f.ctx, "same", bytes.NewReader(payload))
			}
			errs[i] = err
			if err == nil {
				addrs[i] = s.Address.String()
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("create %d: %v", i, errs[i])
		} else if addrs[i] != addrs[0] {
			t.Errorf("create %d gave %s, create 0 gave %s", i, addrs[i], addrs[0])
		}
	}
	if t.Failed() {
		return
	}
	got, err := f.e.Retrieve(f.ctx, addrs[0])
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve after concurrent creates returned other bytes")
	}
	if l, ok := f.d.(driver.Lister); ok {
		count := 0
		if err := l.List(f.ctx, func(string, string, *driver.Attributes) error { count++; return nil }); err != nil {
			t.Fatalf("List: %v", err)
		}
		if count != 1 {
			t.Errorf("backend holds %d objects after concurrent creates of one payload, want 1", count)
		}
	}
}

// testStream checks Open: one-byte reads, the Reader's description, reads
// after Close.
func testStream(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	for _, payload := range [][]byte{RandomPayload(5000, 11), JSONPayload(300_000, 12)} {
		s, err := f.e.Create(f.ctx, "stream", payload, stash.ContentType("application/json"))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		r, err := f.e.Open(f.ctx, s.Address.String())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if d := r.Stash(); d.Address.String() != s.Address.String() || d.Size != s.Size || d.ContentType != "application/json" || d.Data != nil {
			t.Errorf("Reader.Stash() = %+v, want the stash without data", d)
		}
		got, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil {
			t.Fatalf("reading byte by byte: %v", err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("streamed %d bytes, want the %d of the payload", len(got), len(payload))
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil {
			t.Errorf("Read after Close: %d, %v; want 0 and an error", n, err)
		}
		// Reading a part and closing is fine too, and a read after that
		// must not look like a clean end.
		r, err = f.e.Open(f.ctx, s.Address.String())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := io.ReadFull(r, make([]byte, 100)); err != nil {
			t.Fatalf("reading the head: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close after a partial read: %v", err)
		}
		if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil || err == io.EOF {
			t.Errorf("Read after Close of a partly read stash: %d, %v; want 0 and an error other than EOF", n, err)
		}
	}
}

// testMetadata checks that content type, metadata and origin round-trip.
func testMetadata(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness, stash.WithOrigin("engine-default"))
	md := map[string]string{"trace-id": "4bf92f3577b34da6", "Tenant": "acme", "empty": ""}
	for _, stream := range []bool{false, true} {
		payload := JSONPayload(20_000, 21)
		mdIn := maps.Clone(md)
		opts := []stash.CreateOption{stash.ContentType("application/json"), stash.Metadata(mdIn), stash.Origin("svc-orders")}
		var s *stash.Stash
		var err error
		if stream {
			s, err = f.e.CreateFrom(f.ctx, "md-stream", bytes.NewReader(payload), opts...)
		} else {
			s, err = f.e.Create(f.ctx, "md", payload, opts...)
		}
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		mdIn["trace-id"] = "changed after create" // the stash keeps its own copy
		got, err := f.e.Retrieve(f.ctx, s.Address.String())
		if err != nil {
			t.Fatalf("Retrieve: %v", err)
		}
		st, err := f.e.Stat(f.ctx, s.Address.String())
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		r, err := f.e.Open(f.ctx, s.Address.String())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		op := r.Stash()
		r.Close()
		for what, x := range map[string]*stash.Stash{"create": s, "Retrieve": got, "Stat": st, "Open": op} {
			if x.ContentType != "application/json" || x.Origin != "svc-orders" || !maps.Equal(x.Metadata, md) {
				t.Errorf("%s: content type %q, origin %q, metadata %v; want application/json, svc-orders, %v", what, x.ContentType, x.Origin, x.Metadata, md)
			}
			if !x.Created.Equal(epoch) {
				t.Errorf("%s: Created %v, want %v", what, x.Created, epoch)
			}
		}
	}
	// The engine's default origin applies when the call gives none.
	s, err := f.e.Create(f.ctx, "plain", []byte("plain payload"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	st, err := f.e.Stat(f.ctx, s.Address.String())
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Origin != "engine-default" || len(st.Metadata) != 0 || st.ContentType != "" {
		t.Errorf("Stat of a plain stash: origin %q, metadata %v, content type %q; want engine-default, none, none", st.Origin, st.Metadata, st.ContentType)
	}
}

// expectExpired checks every read of address reports ErrExpired (which is
// also ErrNotFound).
func expectExpired(t *testing.T, f *fixture, address string) {
	t.Helper()
	_, err := f.e.Retrieve(f.ctx, address)
	wantErr(t, "Retrieve of an expired stash", err, stash.ErrExpired, stash.ErrNotFound)
	_, err = f.e.Open(f.ctx, address)
	wantErr(t, "Open of an expired stash", err, stash.ErrExpired, stash.ErrNotFound)
	_, err = f.e.Stat(f.ctx, address)
	wantErr(t, "Stat of an expired stash", err, stash.ErrExpired, stash.ErrNotFound)
}

func expectLive(t *testing.T, f *fixture, address string, payload []byte) {
	t.Helper()
	got, err := f.e.Retrieve(f.ctx, address)
	if err != nil {
		t.Fatalf("Retrieve of a live stash: %v", err)
	}
	if !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve returned other bytes")
	}
}

// testExpiry checks time-to-live, time-to-idle, defaults, Sweep and the
// extension of expiry by a repeated create.
func testExpiry(t *testing.T, newHarness HarnessMaker) {
	payload := RandomPayload(10_000, 31)

	t.Run("TTL", func(t *testing.T) {
		f := setup(t, newHarness)
		s, err := f.e.Create(f.ctx, "ttl", payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if want := epoch.Add(time.Hour); !s.ExpiresAt.Equal(want) || !s.Expiry().Equal(want) {
			t.Errorf("ExpiresAt %v, Expiry %v; want %v", s.ExpiresAt, s.Expiry(), want)
		}
		f.clock.Advance(59 * time.Minute)
		expectLive(t, f, s.String(), payload)
		f.clock.Advance(time.Minute)
		expectExpired(t, f, s.String())
	})

	t.Run("TTI", func(t *testing.T) {
		f := setup(t, newHarness)
		s, err := f.e.Create(f.ctx, "tti", payload, stash.TTI(time.Hour))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if want := epoch.Add(time.Hour); !s.Expiry().Equal(want) {
			t.Errorf("Expiry %v, want %v", s.Expiry(), want)
		}
		f.clock.Advance(50 * time.Minute)
		expectLive(t, f, s.String(), payload) // records the access
		f.clock.Advance(50 * time.Minute)     // 100 minutes after creation, 50 after the read
		if _, ok := f.d.(driver.Updater); ok {
			expectLive(t, f, s.String(), payload)
			f.clock.Advance(time.Hour)
			expectExpired(t, f, s.String())
		} else {
			// Without Updater the read cannot be recorded: idle since creation.
			expectExpired(t, f, s.String())
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		f := setup(t, newHarness, stash.WithDefaultTTL(time.Hour))
		s1, err := f.e.Create(f.ctx, "default-ttl", payload)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		s2, err := f.e.Create(f.ctx, "no-expiry", payload, stash.NoExpiry())
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		s3, err := f.e.CreateFrom(f.ctx, "longer", bytes.NewReader(payload), stash.TTL(3*time.Hour))
		if err != nil {
			t.Fatalf("CreateFrom: %v", err)
		}
		if !s2.ExpiresAt.IsZero() || s2.TTI != 0 {
			t.Errorf("NoExpiry stash expires at %v, TTI %v", s2.ExpiresAt, s2.TTI)
		}
		f.clock.Advance(2 * time.Hour)
		expectExpired(t, f, s1.String())
		expectLive(t, f, s2.String(), payload)
		expectLive(t, f, s3.String(), payload)
		f.clock.Advance(24 * 365 * time.Hour)
		expectLive(t, f, s2.String(), payload)
		expectExpired(t, f, s3.String())
	})

	t.Run("Sweep", func(t *testing.T) {
		f := setup(t, newHarness)
		s1, err := f.e.Create(f.ctx, "short", payload, stash.TTL(time.Minute))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		s2, err := f.e.Create(f.ctx, "idle", payload, stash.TTI(time.Minute))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		s3, err := f.e.Create(f.ctx, "long", payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		f.clock.Advance(2 * time.Minute)
		n, err := f.e.Sweep(f.ctx)
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if _, ok := f.d.(driver.Lister); !ok {
			if n != 0 {
				t.Errorf("Sweep over a backend that cannot list deleted %d", n)
			}
			expectExpired(t, f, s1.String())
			return
		}
		if n != 2 {
			t.Errorf("Sweep deleted %d stashes, want 2", n)
		}
		for _, s := range []*stash.Stash{s1, s2} {
			_, err := f.d.Stat(f.ctx, s.Address.Namespace, s.Address.Key())
			wantErr(t, "driver Stat of a swept stash", err, driver.ErrNotFound)
		}
		expectLive(t, f, s3.String(), payload)
		if n, err := f.e.Sweep(f.ctx); n != 0 || err != nil {
			t.Errorf("second Sweep: %d, %v; want 0, nil", n, err)
		}
	})

	t.Run("Extend", func(t *testing.T) {
		f := setup(t, newHarness)
		s1, err := f.e.Create(f.ctx, "extend", payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		f.clock.Advance(30 * time.Minute)
		s2, err := f.e.Create(f.ctx, "extend", payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatalf("second Create: %v", err)
		}
		if s2.String() != s1.String() {
			t.Fatalf("second create gave %s, want %s", s2, s1)
		}
		f.clock.Advance(45 * time.Minute) // 75 minutes after the first create
		if _, ok := f.d.(driver.Updater); ok {
			if want := epoch.Add(90 * time.Minute); !s2.ExpiresAt.Equal(want) {
				t.Errorf("second create reports ExpiresAt %v, want it extended to %v", s2.ExpiresAt, want)
			}
			expectLive(t, f, s1.String(), payload)
			f.clock.Advance(15 * time.Minute)
			expectExpired(t, f, s1.String())
		} else {
			if want := epoch.Add(time.Hour); !s2.ExpiresAt.Equal(want) {
				t.Errorf("second create reports ExpiresAt %v, but the backend cannot extend it: want %v", s2.ExpiresAt, want)
			}
			expectExpired(t, f, s1.String())
		}
		// Creating an expired stash again writes it afresh.
		f.clock.Advance(time.Hour)
		s3, err := f.e.Create(f.ctx, "extend", payload, stash.TTL(time.Hour))
		if err != nil {
			t.Fatalf("Create after expiry: %v", err)
		}
		if s3.String() != s1.String() || !s3.Created.Equal(f.clock.Now()) {
			t.Errorf("re-created expired stash: %s created %v; want %s created now (%v)", s3, s3.Created, s1, f.clock.Now())
		}
		expectLive(t, f, s3.String(), payload)
	})
}

// testDelete checks Delete and what follows it.
func testDelete(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	payload := JSONPayload(50_000, 41)
	s, err := f.e.Create(f.ctx, "doomed", payload)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	keep, err := f.e.Create(f.ctx, "kept", payload)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := f.e.Delete(f.ctx, s.String()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = f.e.Retrieve(f.ctx, s.String())
	wantErr(t, "Retrieve after Delete", err, stash.ErrNotFound)
	_, err = f.e.Open(f.ctx, s.String())
	wantErr(t, "Open after Delete", err, stash.ErrNotFound)
	_, err = f.e.Stat(f.ctx, s.String())
	wantErr(t, "Stat after Delete", err, stash.ErrNotFound)
	if errors.Is(err, stash.ErrExpired) {
		t.Errorf("Stat after Delete: %v matches ErrExpired", err)
	}
	wantErr(t, "second Delete", f.e.Delete(f.ctx, s.String()), stash.ErrNotFound)
	var se *stash.Error
	if err := f.e.Delete(f.ctx, s.String()); !errors.As(err, &se) || se.Op != "delete" || se.Address != s.String() {
		t.Errorf("Delete error %v: want a *stash.Error naming the operation and address", err)
	}
	expectLive(t, f, keep.String(), payload)
	// A deleted stash can be created again.
	if _, err := f.e.Create(f.ctx, "doomed", payload); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	expectLive(t, f, s.String(), payload)
}

// testInvalid checks that bad names, namespaces and addresses are
// ErrInvalidAddress and touch nothing.
func testInvalid(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	scheme := f.d.Scheme()
	payload := []byte("some payload")
	for _, name := range []string{"", "..", "../etc", "a/b", "/abs", `a\b`, "nul\x00", ".hidden", "sp ace", "é", "%2F", strings.Repeat("n", stash.MaxNameLength+1)} {
		_, err := f.e.Create(f.ctx, name, payload)
		wantErr(t, fmt.Sprintf("Create(%q)", name), err, stash.ErrInvalidAddress)
		_, err = f.e.CreateFrom(f.ctx, name, bytes.NewReader(payload))
		wantErr(t, fmt.Sprintf("CreateFrom(%q)", name), err, stash.ErrInvalidAddress)
	}
	for _, ns := range []string{"", "Upper", "a/b", "..", "-x", "x-", strings.Repeat("n", stash.MaxNamespaceLength+1)} {
		_, err := f.e.Create(f.ctx, "ok", payload, stash.InNamespace(ns))
		wantErr(t, fmt.Sprintf("Create in namespace %q", ns), err, stash.ErrInvalidAddress)
	}
	for _, sc := range []stash.Scope{{Key: "", Value: "1"}, {Key: "Org", Value: "1"}, {Key: "org", Value: ".."}, {Key: "org", Value: "a/b"}, {Key: "org", Value: ""}} {
		_, err := f.e.Create(f.ctx, "ok", payload, stash.InScopes(sc))
		wantErr(t, fmt.Sprintf("Create in scope %q", sc), err, stash.ErrInvalidAddress)
	}
	d := digest(payload)
	for _, addr := range []string{
		"",
		scheme + "://",
		scheme + "://default",
		scheme + "://default/name",
		scheme + "://default/name." + d[:63],
		scheme + "://default/name." + strings.ToUpper(d),
		scheme + "://default/../name." + d,
		scheme + "://default/a/../name." + d,
		scheme + ":///etc/passwd." + d,
		scheme + "://default//name." + d,
		scheme + "://default/na%2Fme." + d,
		scheme + "://default/na\x00me." + d,
		scheme + "://default/name." + d + "?x=1",
		scheme + "://Default/name." + d,
		scheme + "://default/" + strings.Repeat("n", stash.MaxNameLength+1) + "." + d,
		"nosuchscheme://default/name." + d,
	} {
		_, err := f.e.Retrieve(f.ctx, addr)
		wantErr(t, fmt.Sprintf("Retrieve(%q)", addr), err, stash.ErrInvalidAddress)
		_, err = f.e.Open(f.ctx, addr)
		wantErr(t, fmt.Sprintf("Open(%q)", addr), err, stash.ErrInvalidAddress)
		_, err = f.e.Stat(f.ctx, addr)
		wantErr(t, fmt.Sprintf("Stat(%q)", addr), err, stash.ErrInvalidAddress)
		wantErr(t, fmt.Sprintf("Delete(%q)", addr), f.e.Delete(f.ctx, addr), stash.ErrInvalidAddress)
	}
	// A well-formed address of nothing is not found.
	_, err := f.e.Retrieve(f.ctx, scheme+"://default/name."+d)
	wantErr(t, "Retrieve of a valid address never created", err, stash.ErrNotFound)
	if errors.Is(err, stash.ErrInvalidAddress) {
		t.Errorf("Retrieve of a valid address: %v matches ErrInvalidAddress", err)
	}
}

// testCorruption flips a stored byte and checks that reads refuse it.
func testCorruption(t *testing.T, newHarness HarnessMaker) {
	f := setup(t, newHarness)
	for i, c := range []struct {
		name    string
		payload []byte
		stream  bool
	}{
		{"random", RandomPayload(100_000, 51), false},
		{"random-1MiB", RandomPayload(1<<20+5, 54), false},
		{"json", JSONPayload(1<<20, 52), false},
		{"tiny", []byte("x"), false},
		{"spooled-json", JSONPayload(stash.DefaultSpoolMemory+1000, 53), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("corrupt-%d", i)
			var s *stash.Stash
			var err error
			if c.stream {
				s, err = f.e.CreateFrom(f.ctx, name, bytes.NewReader(c.payload))
			} else {
				s, err = f.e.Create(f.ctx, name, c.payload)
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := f.h.Corrupt(f.ctx, s.Address.Namespace, s.Address.Key()); err != nil {
				t.Fatalf("Corrupt: %v", err)
			}
			got, err := f.e.Retrieve(f.ctx, s.String())
			wantErr(t, "Retrieve of a corrupted stash", err, stash.ErrIntegrity)
			if got != nil {
				t.Errorf("Retrieve of a corrupted stash returned a stash of %d bytes", len(got.Data))
			}
			r, err := f.e.Open(f.ctx, s.String())
			if err != nil {
				wantErr(t, "Open of a corrupted stash", err, stash.ErrIntegrity)
				return
			}
			defer r.Close()
			_, err = io.Copy(io.Discard, r)
			wantErr(t, "reading a corrupted stash", err, stash.ErrIntegrity)
			if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil || err == io.EOF {
				t.Errorf("Read after the integrity error: %d, %v; want the error again", n, err)
			}
		})
	}
}
