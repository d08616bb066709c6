package stash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

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
	e := engineOver(t, lyingSizes{Driver: store, size: 1 << 30, stored: 64 << 20})
	got, n, err := retrieveAllocating(e, s.String())
	if err == nil || got != nil {
		t.Fatalf("Retrieve returned data (%v)", err)
	}
	if !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("Retrieve: %v, want ErrIntegrity", err)
	}
	if n > 40<<20 {
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

// TestCreateOverAMismatchedStash: when the key a Create would write already
// holds a stash whose recorded attributes disagree with the new content
// (another size, another digest, a stored size that cannot be), Create
// does not report that stash as written (a reference nobody could read):
// it replaces it, and the stash it returns reads back as the payload.
func TestCreateOverAMismatchedStash(t *testing.T) {
	ctx := context.Background()
	p := stashtest.JSONPayload(10<<10, 4)
	n := int64(len(p))
	for _, c := range []struct {
		name   string
		stored []byte
		enc    driver.Encoding
		size   int64
		digest string
	}{
		{"OtherSize", p[:n-1], driver.EncodingIdentity, n - 1, ""},
		{"OtherDigest", p, driver.EncodingIdentity, n, sha([]byte("other"))},
		{"StoredShort", p[:10], driver.EncodingIdentity, n, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, store := memEngine(t)
			addr := putRaw(t, store, "mismatch", p, c.stored, c.enc, c.size)
			if c.digest != "" {
				a, err := stash.ParseAddress(addr)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := store.ModifyAttributes(ctx, a.Namespace, a.Key(), func(h *driver.Attributes) *driver.Attributes {
					m := *h
					m.Digest = c.digest
					return &m
				}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.Retrieve(ctx, addr); !errors.Is(err, stash.ErrIntegrity) {
				t.Fatalf("the planted stash reads as %v, want ErrIntegrity", err)
			}
			for _, create := range []string{"Create", "CreateFrom"} {
				var s *stash.Stash
				var err error
				if create == "Create" {
					s, err = e.Create(ctx, "mismatch", p)
				} else {
					s, err = e.CreateFrom(ctx, "mismatch", bytes.NewReader(p))
				}
				if err != nil {
					t.Fatalf("%s: %v", create, err)
				}
				if s.String() != addr {
					t.Fatalf("%s: %s, want %s", create, s, addr)
				}
				if s.Size != n {
					t.Errorf("%s returned a stash of %d bytes, want %d", create, s.Size, n)
				}
				got, err := e.Retrieve(ctx, s.String())
				if err != nil || !bytes.Equal(got.Data, p) {
					t.Fatalf("%s reported %s written, yet Retrieve: %v", create, s, err)
				}
			}
		})
	}
}

// blockedBody is a remote store whose reader blocks until it is closed
// and then answers with bytes of the right length but the wrong content
// and io.EOF, as a connection torn down under a read may.
type blockedBody struct {
	driver.Driver
	entered chan struct{}
}

func (d blockedBody) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := d.Driver.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	rc.Close()
	return &blockedReader{n: int(a.StoredSize), entered: d.entered, closed: make(chan struct{})}, a, nil
}

type blockedReader struct {
	n       int
	entered chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (b *blockedReader) Read(p []byte) (int, error) {
	b.entered <- struct{}{}
	<-b.closed
	n := copy(p, bytes.Repeat([]byte{'x'}, b.n))
	return n, io.EOF
}

func (b *blockedReader) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestReaderCloseDuringRead: a Reader closed while a Read waits on the
// backend (closing is how a caller unblocks it) never lets that Read end
// in a clean io.EOF without the digest checked, nor panic, nor race; a
// second Close at the same time does nothing more.
func TestReaderCloseDuringRead(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	good, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	s, err := good.Create(ctx, "blocked", stashtest.JSONPayload(8<<10, 9), stash.Compress(stash.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	e, err := stash.New(stash.WithBackend(blockedBody{Driver: store, entered: entered}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, err := e.Open(ctx, s.String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		done <- err
	}()
	<-entered
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Close() }()
	}
	wg.Wait()
	if err := <-done; err == nil {
		t.Error("a Read under Close ended in a clean EOF on bytes that do not match the digest")
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Errorf("Read after Close: %d, %v", n, err)
	}
}

// badCount is a reader that breaks io.Reader's contract the way a buggy
// one can: it reports having read more than it was given, or a negative
// count.
type badCount struct {
	io.ReadCloser
	delta int // added to len(p); -1 means a count of -1
}

func (b *badCount) Read(p []byte) (int, error) {
	if b.delta < 0 {
		return -1, nil
	}
	return len(p) + b.delta, nil
}

type badCountBody struct {
	driver.Driver
	delta int
}

func (d badCountBody) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := d.Driver.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	return &badCount{ReadCloser: rc, delta: d.delta}, a, nil
}

// TestReaderCountsOutOfRange: a payload reader (CreateFrom) or a backend's
// reader (Retrieve, Open) that reports more bytes than it was given room
// for, or a negative count, is a clear error, never a panic, never data.
func TestReaderCountsOutOfRange(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	good, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	for _, delta := range []int{-1, 1, 1 << 20} {
		if s, err := good.CreateFrom(ctx, "counts", &badCount{delta: delta}); err == nil {
			t.Errorf("CreateFrom with a count of len(p)%+d: %s, want an error", delta, s)
		}
		for _, c := range []stash.Compression{stash.CompressionNone, stash.CompressionZstd} {
			s, err := good.Create(ctx, "counts", stashtest.JSONPayload(100<<10, 2), stash.Compress(c))
			if err != nil {
				t.Fatal(err)
			}
			e, err := stash.New(stash.WithBackend(badCountBody{Driver: store, delta: delta}), stash.WithInlineMax(-1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("%v, len(p)%+d: Retrieve: %v, want ErrIntegrity", c, delta, err)
			}
			if r, err := e.Open(ctx, s.String()); err == nil {
				if _, err := io.Copy(io.Discard, r); !errors.Is(err, stash.ErrIntegrity) {
					t.Errorf("%v, len(p)%+d: Open: %v, want ErrIntegrity", c, delta, err)
				}
				r.Close()
			} else if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("%v, len(p)%+d: Open: %v, want ErrIntegrity", c, delta, err)
			}
			e.Close()
		}
	}
}

// TestDisplayAddressHidesLinkSecrets: a share link's query and fragment
// (a signature, a presigned URL's credentials) never reach an error
// message or a log line, whatever the case of its scheme (schemes are
// case-insensitive: HTTPS:// is a link a user may paste as well).
func TestDisplayAddressHidesLinkSecrets(t *testing.T) {
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, link := range []string{
		"https://h.example/k?X-Amz-Signature=SECRET",
		"HTTPS://h.example/k?X-Amz-Signature=SECRET",
		"Http://h.example/k?sig=SECRET",
		"hTtPs://h.example/k#stash=SECRET",
	} {
		if got := stash.DisplayAddress(link); strings.Contains(got, "SECRET") {
			t.Errorf("DisplayAddress(%q) = %q", link, got)
		}
		if _, err := e.Retrieve(context.Background(), link); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Retrieve(%q): %v", link, err)
		}
	}
}

// noProgress is a reader that answers every Read with no bytes and no
// error, which io.Reader discourages and a broken one does.
type noProgress struct{ io.ReadCloser }

func (noProgress) Read([]byte) (int, error) { return 0, nil }

type noProgressBody struct{ driver.Driver }

func (d noProgressBody) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := d.Driver.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	return noProgress{rc}, a, nil
}

// TestReadersWithoutProgress: a payload reader (CreateFrom) or a backend's
// reader (Retrieve) that keeps answering with nothing, neither bytes nor
// an error, is an error after a bounded number of reads (as bufio's
// io.ErrNoProgress), not a loop that spins until the process is killed.
func TestReadersWithoutProgress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := memstash.New()
	good, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	var addrs []string
	for _, c := range []stash.Compression{stash.CompressionNone, stash.CompressionZstd} {
		s, err := good.Create(ctx, "progress", stashtest.JSONPayload(300<<10, 5), stash.Compress(c))
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, s.String())
	}
	e, err := stash.New(stash.WithBackend(noProgressBody{store}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	within := func(what string, f func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: no error", what)
			}
		case <-time.After(10 * time.Second):
			cancel() // stops the loop through the context, where it checks it
			t.Fatalf("%s: still reading after 10s", what)
		}
	}
	within("CreateFrom", func() error {
		_, err := good.CreateFrom(ctx, "progress", noProgress{})
		return err
	})
	for _, a := range addrs {
		within("Retrieve "+a, func() error {
			_, err := e.Retrieve(ctx, a)
			if err != nil && !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("Retrieve %s: %v, want ErrIntegrity", a, err)
			}
			return err
		})
	}
}

// TestOpenerReturningNothing: a registered opener that reports success
// without a driver is an error from OpenDriver and New, not a panic.
func TestOpenerReturningNothing(t *testing.T) {
	stash.RegisterScheme("auditnil", func(context.Context, *url.URL) (driver.Driver, error) { return nil, nil })
	if d, err := stash.OpenDriver(context.Background(), "auditnil://x"); err == nil || d != nil {
		t.Errorf("OpenDriver: %v, %v; want an error", d, err)
	}
	if e, err := stash.New(stash.WithBackendURL(context.Background(), "auditnil://x")); err == nil {
		e.Close()
		t.Error("New: no error")
	}
}

// TestCreateNeverReturnsAnUnparsableAddress: whatever the inline limit, the
// name, namespace and scopes, the address Create returns is one that
// ParseAddress accepts and Retrieve reads back: inline data that would make
// an inline address too long goes to the backend, and a stash whose
// address would be over MaxAddressLength is refused before it is written.
func TestCreateNeverReturnsAnUnparsableAddress(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, n := range []int{10, 40 << 10, 48 << 10, 60 << 10, 200 << 10} {
		p := stashtest.RandomPayload(n, uint64(n))
		for _, create := range []string{"Create", "CreateFrom"} {
			var s *stash.Stash
			if create == "Create" {
				s, err = e.Create(ctx, "inline", p)
			} else {
				s, err = e.CreateFrom(ctx, "inline", bytes.NewReader(p))
			}
			if err != nil {
				t.Fatalf("%s of %d bytes: %v", create, n, err)
			}
			got, err := e.Retrieve(ctx, s.String())
			if err != nil || !bytes.Equal(got.Data, p) {
				t.Fatalf("%s of %d bytes returned %.60s…, which Retrieve reads as %v", create, n, s, err)
			}
		}
	}
	var scopes []stash.Scope
	for i := range stash.MaxScopes {
		scopes = append(scopes, stash.Scope{Key: "k" + strings.Repeat("a", 30) + string(rune('0'+i)), Value: strings.Repeat("v", 64)})
	}
	long := []stash.CreateOption{stash.InNamespace(strings.Repeat("s", stash.MaxNamespaceLength)), stash.InScopes(scopes...), stash.NoInline()}
	if s, err := e.Create(ctx, strings.Repeat("n", stash.MaxNameLength), []byte("x"), long...); !errors.Is(err, stash.ErrInvalidAddress) {
		t.Errorf("Create of an address over %d bytes: %v, %v; want ErrInvalidAddress", stash.MaxAddressLength, s, err)
	}
	n := 0
	// 10 bytes and 40 KiB travel inline; from 48 KiB (64 KiB in base64)
	// the payloads are stored, once each, and nothing of the refused one.
	if err := store.List(ctx, func(string, string, *driver.Attributes) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("the store holds %d stashes (%v), want 3", n, err)
	}
}

// serverFetcher answers every link with body and the attributes header an
// S3 presigned GET returns (user metadata "claimstash").
type serverFetcher struct {
	body  []byte
	attrs driver.Attributes
}

func (serverFetcher) Trusted(*stash.Link) error { return nil }

func (f serverFetcher) Fetch(context.Context, *stash.Link) (*http.Response, error) {
	raw, err := json.Marshal(f.attrs)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("X-Amz-Meta-Claimstash", string(raw))
	return &http.Response{StatusCode: 200, Header: h, ContentLength: int64(len(f.body)), Body: io.NopCloser(bytes.NewReader(f.body))}, nil
}

// TestPresignedLinkOfAnExpiredStash: a presigned link outlives nothing: when
// the server's attributes of the object say the stash has expired, reading
// the link is ErrExpired, as reading the address is, not the payload.
func TestPresignedLinkOfAnExpiredStash(t *testing.T) {
	ctx := context.Background()
	p := []byte("expired payload")
	addr := stash.Address{Scheme: "s3", Namespace: "default", Name: "gone", Digest: sha(p)}
	link := "https://bucket.example/default/" + addr.Key() + "?X-Amz-Signature=x#" + url.Values{"stash": {addr.String()}, "size": {"15"}}.Encode()
	now := time.Now()
	for _, c := range []struct {
		name    string
		attrs   driver.Attributes
		expired bool
	}{
		{"Live", driver.Attributes{Size: 15, StoredSize: 15, Digest: addr.Digest, Created: now, ExpiresAt: now.Add(time.Hour)}, false},
		{"PastExpiry", driver.Attributes{Size: 15, StoredSize: 15, Digest: addr.Digest, Created: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}, true},
		{"PastIdle", driver.Attributes{Size: 15, StoredSize: 15, Digest: addr.Digest, Created: now.Add(-2 * time.Hour), TTI: time.Hour, LastAccess: now.Add(-90 * time.Minute)}, true},
	} {
		e, err := stash.New(stash.WithLinkFetcher(serverFetcher{body: p, attrs: c.attrs}))
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.Retrieve(ctx, link)
		switch {
		case c.expired && !errors.Is(err, stash.ErrExpired):
			t.Errorf("%s: Retrieve: %v, want ErrExpired", c.name, err)
		case !c.expired && (err != nil || !bytes.Equal(s.Data, p)):
			t.Errorf("%s: Retrieve: %v", c.name, err)
		}
		if r, err := e.Open(ctx, link); c.expired && !errors.Is(err, stash.ErrExpired) {
			t.Errorf("%s: Open: %v, want ErrExpired", c.name, err)
			if err == nil {
				r.Close()
			}
		} else if err == nil {
			r.Close()
		}
		e.Close()
	}
}

// nilCallbacks is memstash whose conditional operations call the engine's
// function with no attributes, as a broken driver could.
type nilCallbacks struct{ *memstash.Store }

func (d nilCallbacks) ModifyAttributes(ctx context.Context, ns, key string, fn func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	if fn(nil) != nil {
		return nil, errors.New("fn(nil) asked for a write")
	}
	return d.Store.Stat(ctx, ns, key)
}

func (d nilCallbacks) DeleteIf(ctx context.Context, ns, key string, cond func(*driver.Attributes) bool) (bool, error) {
	if cond(nil) {
		return false, errors.New("cond(nil) asked for a delete")
	}
	return false, nil
}

// TestDriverCallbacksWithoutAttributes: a driver that calls the engine's
// read-modify-write or delete condition without attributes gets "no change"
// and "do not delete", never a panic, from every operation that uses them.
func TestDriverCallbacksWithoutAttributes(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(nilCallbacks{store}), stash.WithInlineMax(-1), stash.WithClock(func() time.Time { return clock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Create(ctx, "cb", []byte("payload"), stash.TTL(time.Hour), stash.TTI(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	if _, err := e.Create(ctx, "cb", []byte("payload"), stash.TTL(2*time.Hour)); err != nil {
		t.Errorf("Create extending through ModifyAttributes: %v", err)
	}
	if _, err := e.Retrieve(ctx, s.String()); err != nil {
		t.Errorf("Retrieve recording the access: %v", err)
	}
	now = now.Add(3 * time.Hour)
	if _, err := e.Sweep(ctx); err != nil {
		t.Errorf("Sweep: %v", err)
	}
	// The driver keeps the expired stash it would not delete: a Create
	// over it is an error or a stash that reads back, never a panic.
	if s, err := e.Create(ctx, "cb", []byte("payload")); err == nil {
		if got, err := e.Retrieve(ctx, s.String()); err != nil || string(got.Data) != "payload" {
			t.Errorf("Create over the expired stash reported %s written, yet Retrieve: %v", s, err)
		}
	}
}

// remote is a store whose bytes arrive over a connection: it hides the
// driver.BytesKeeper of the store it wraps.
type remote struct{ driver.Driver }

// TestRetrieveLargeCompressedFromRemote: a compressed stash of more than
// 16 MiB stored bytes from a store that does not keep them in memory, whose
// stored bytes Retrieve reads before it allocates the recorded size, reads
// back exactly; one stored byte fewer or more than recorded is
// ErrIntegrity.
func TestRetrieveLargeCompressedFromRemote(t *testing.T) {
	ctx := context.Background()
	store := memstash.New()
	// Random and zero pieces in turn: zstd stores about half.
	p := stashtest.RandomPayload(36<<20, 11)
	for off := 0; off < len(p); off += 8 << 10 {
		clear(p[off : off+4<<10])
	}
	good, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	s, err := good.Create(ctx, "large", p, stash.Compress(stash.CompressionZstd))
	if err != nil {
		t.Fatal(err)
	}
	if s.Encoding != driver.EncodingZstd || s.StoredSize <= 16<<20 {
		t.Fatalf("stored %d bytes as %q: want over 16 MiB of zstd", s.StoredSize, s.Encoding)
	}
	e, err := stash.New(stash.WithBackend(remote{store}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got, err := e.Retrieve(ctx, s.String())
	if err != nil || !bytes.Equal(got.Data, p) {
		t.Fatalf("Retrieve: %v", err)
	}
	for _, delta := range []int64{-1, 1} {
		e, err := stash.New(stash.WithBackend(lyingSizes{Driver: store, size: s.Size, stored: s.StoredSize + delta}), stash.WithInlineMax(-1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("stored size recorded %+d: Retrieve: %v, want ErrIntegrity", delta, err)
		}
		e.Close()
	}
}

// TestLinkBombOfUnknownLength: a share link served without a
// Content-Length, whose few KiB of zstd decode to 64 MiB that do not match
// the digest, is ErrIntegrity, and Retrieve allocates in the order of the
// bytes received, not the 64 MiB they decode to.
func TestLinkBombOfUnknownLength(t *testing.T) {
	const size = 64 << 20
	bomb := zstdOf(t, make([]byte, size))
	addr := stash.Address{Scheme: "s3", Namespace: "default", Name: "bomb", Digest: sha([]byte("not zeros"))}
	link := "https://bucket.example/default/" + addr.Key() + "?X-Amz-Signature=x#" +
		url.Values{"stash": {addr.String()}, "size": {fmt.Sprint(size)}, "enc": {"zstd"}}.Encode()
	e, err := stash.New(stash.WithLinkFetcher(unknownLength{bomb}))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, n, err := retrieveAllocating(e, link)
	if err == nil || s != nil {
		t.Fatalf("Retrieve returned data (%v)", err)
	}
	if !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("Retrieve: %v, want ErrIntegrity", err)
	}
	if n > 16<<20 {
		t.Errorf("Retrieve allocated %d MiB for %d bytes received", n>>20, len(bomb))
	}
}

// unknownLength serves its body without a Content-Length.
type unknownLength struct{ body []byte }

func (unknownLength) Trusted(*stash.Link) error { return nil }

func (f unknownLength) Fetch(context.Context, *stash.Link) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1, Body: io.NopCloser(bytes.NewReader(f.body))}, nil
}

// TestDisplayAddressHidesInlineData: an inline address is shown without its
// data (the payload itself), in errors as DisplayAddress shows it.
func TestDisplayAddressHidesInlineData(t *testing.T) {
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Create(context.Background(), "small", []byte("SECRET payload"))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.String()
	if !strings.HasPrefix(addr, "inline://") {
		t.Fatalf("Create of 14 bytes gave %s, want an inline address", addr)
	}
	secret := addr[strings.Index(addr, "?"):]
	for _, a := range []string{addr, strings.ToUpper(addr[:9]) + addr[9:], addr + "\x00"} {
		if got := stash.DisplayAddress(a); strings.Contains(got, secret[1:]) || !strings.HasSuffix(got, "://default/small?…") {
			t.Errorf("DisplayAddress(%q) = %q: want the namespace and name, without the data", a, got)
		}
	}
	bad := addr[:len(addr)-2] // data that no longer decodes
	if _, err := e.Retrieve(context.Background(), bad); err == nil || strings.Contains(err.Error(), secret[1:len(secret)-2]) {
		t.Errorf("Retrieve of a broken inline address: %v; want an error without the data", err)
	}
}
