package natsstash_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/stashtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// harness runs the conformance suite against one embedded server; every
// driver gets buckets of its own through a fresh prefix.
type harness struct {
	srv *natstest.Server
	js  jetstream.JetStream
	n   atomic.Int64
	// prefixes of the drivers made, so Corrupt finds the bucket.
	mu     sync.Mutex
	stores []*natsstash.Store
}

var _ stashtest.BenchHarnessMaker = newHarness

// newHarness starts a server per harness: natstest shuts it down with
// tb.Cleanup.
func newHarness(_ context.Context, tb testing.TB) (stashtest.Harness, error) {
	srv := natstest.Start(tb)
	return &harness{srv: srv, js: srv.JetStream(tb)}, nil
}

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) {
	s, err := natsstash.New(h.js, natsstash.WithBucketPrefix(fmt.Sprintf("t%d_", h.n.Add(1))))
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.stores = append(h.stores, s)
	h.mu.Unlock()
	return s, nil
}

// Corrupt rewrites the object with one byte flipped and its original
// metadata. The object store's own digest then matches the new bytes, so
// it is the engine's SHA-256 check that must catch it.
func (h *harness) Corrupt(ctx context.Context, ns, key string) error {
	h.mu.Lock()
	stores := append([]*natsstash.Store(nil), h.stores...)
	h.mu.Unlock()
	err := errors.New("corrupt: no driver made")
	for i := len(stores) - 1; i >= 0; i-- { // the newest driver first
		if err = corrupt(ctx, h.js, stores[i].BucketName(ns), key); err == nil {
			return nil
		}
	}
	return err
}

func corrupt(ctx context.Context, js jetstream.JetStream, bucket, key string) error {
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return err
	}
	info, err := obs.GetInfo(ctx, key)
	if err != nil {
		return err
	}
	data, err := obs.GetBytes(ctx, key)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return errors.New("corrupt: empty object")
	}
	data[len(data)/2] ^= 0x01
	_, err = obs.Put(ctx, info.ObjectMeta, bytes.NewReader(data))
	return err
}

func (h *harness) Close() {}

func TestConformance(t *testing.T) {
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		return newHarness(ctx, t)
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type fixture struct {
	srv   *natstest.Server
	js    jetstream.JetStream
	store *natsstash.Store
	eng   *stash.Engine
	clock *stashtest.Clock
}

func newFixture(t *testing.T, opts ...natsstash.Option) *fixture {
	t.Helper()
	f := &fixture{srv: natstest.Start(t), clock: stashtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))}
	f.js = f.srv.JetStream(t)
	s, err := natsstash.New(f.js, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	f.eng, err = stash.New(stash.WithBackend(s), stash.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	compressible := bytes.Repeat([]byte("claimstash over NATS. "), 150_000) // ~3.3 MB
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"small", []byte("hello")},
		{"one-chunk", randomBytes(t, 100<<10)},
		{"over-max-payload", randomBytes(t, 3<<20+17)}, // many 128 KiB chunks, past 1 MiB
		{"compressible", compressible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := f.eng.Create(ctx, "orders", tc.payload, stash.NoInline(),
				stash.ContentType("application/octet-stream"), stash.Metadata(map[string]string{"k": "v"}), stash.Origin("test"),
				stash.InScopes(stash.Scope{Key: "org", Value: "42"}))
			if err != nil {
				t.Fatal(err)
			}
			if s.Address.Scheme != natsstash.Scheme {
				t.Fatalf("address %s: want the nats scheme", s.Address)
			}
			got, err := f.eng.Retrieve(ctx, s.String())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, tc.payload) {
				t.Fatalf("retrieved %d bytes, want %d equal ones", len(got.Data), len(tc.payload))
			}
			if got.ContentType != "application/octet-stream" || got.Metadata["k"] != "v" || got.Origin != "test" || !got.Created.Equal(f.clock.Now()) {
				t.Fatalf("attributes not kept: %+v", got)
			}
			r, err := f.eng.Open(ctx, s.String())
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(streamed, tc.payload) {
				t.Fatalf("Open: %d bytes, err %v", len(streamed), err)
			}
			st, err := f.eng.Stat(ctx, s.String())
			if err != nil || st.Size != int64(len(tc.payload)) || st.StoredSize != s.StoredSize {
				t.Fatalf("Stat = %+v, %v", st, err)
			}
		})
	}
	// Compression paid: fewer bytes stored than given.
	s, err := f.eng.Stat(ctx, mustCreate(t, f.eng, "orders", compressible).String())
	if err != nil || s.Encoding != driver.EncodingZstd || s.StoredSize >= s.Size {
		t.Fatalf("compressible payload stored as %q, %d of %d bytes (%v)", s.Encoding, s.StoredSize, s.Size, err)
	}
}

func mustCreate(t *testing.T, e *stash.Engine, name string, payload []byte, opts ...stash.CreateOption) *stash.Stash {
	t.Helper()
	s, err := e.Create(context.Background(), name, payload, append([]stash.CreateOption{stash.NoInline()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func key(name string, payload []byte) string {
	sum := sha256.Sum256(payload)
	return name + "." + hex.EncodeToString(sum[:])
}

func TestBucketPerNamespace(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, natsstash.WithBucketPrefix("app-1_"), natsstash.WithStorage(jetstream.MemoryStorage), natsstash.WithBucketTTL(time.Hour), natsstash.WithReplicas(1))
	mustCreate(t, f.eng, "a", []byte("one"), stash.InNamespace("alpha"))
	mustCreate(t, f.eng, "a", []byte("two"), stash.InNamespace("beta-2"))
	for _, bucket := range []string{"app-1_alpha", "app-1_beta-2"} {
		obs, err := f.js.ObjectStore(ctx, bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		st, err := obs.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TTL() != time.Hour || st.Storage() != jetstream.MemoryStorage || st.Replicas() != 1 {
			t.Fatalf("bucket %s: TTL %v storage %v replicas %d", bucket, st.TTL(), st.Storage(), st.Replicas())
		}
	}
	if got := f.store.BucketName("alpha"); got != "app-1_alpha" {
		t.Fatalf("BucketName = %q", got)
	}
	// Reading a namespace that has no bucket does not create one.
	_, err := f.store.Stat(ctx, "gamma", key("a", []byte("x")))
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Stat in a missing bucket: %v, want ErrNotFound", err)
	}
	if _, err := f.js.ObjectStore(ctx, "app-1_gamma"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("a read created bucket app-1_gamma: %v", err)
	}
}

func TestPutExisting(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	payload := []byte("content addressed")
	k := key("x", payload)
	attrs := &driver.Attributes{Size: int64(len(payload)), StoredSize: int64(len(payload)), Origin: "first"}
	if err := f.store.Put(ctx, "default", k, bytes.NewReader(payload), int64(len(payload)), attrs); err != nil {
		t.Fatal(err)
	}
	second := *attrs
	second.Origin = "second"
	err := f.store.Put(ctx, "default", k, bytes.NewReader(payload), int64(len(payload)), &second)
	if !errors.Is(err, driver.ErrExists) {
		t.Fatalf("second Put: %v, want ErrExists", err)
	}
	a, err := f.store.Stat(ctx, "default", k)
	if err != nil || a.Origin != "first" {
		t.Fatalf("second Put replaced the object: %+v, %v", a, err)
	}
	// Concurrent Puts of one key in one process: one writes, the others see it.
	k2 := key("y", payload)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.store.Put(ctx, "default", k2, bytes.NewReader(payload), int64(len(payload)), attrs)
		}()
	}
	wg.Wait()
	written := 0
	for _, err := range errs {
		switch {
		case err == nil:
			written++
		case !errors.Is(err, driver.ErrExists):
			t.Fatalf("concurrent Put: %v", err)
		}
	}
	if written != 1 {
		t.Fatalf("%d concurrent Puts wrote, want 1", written)
	}
}

func TestNotFound(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	s := mustCreate(t, f.eng, "gone", []byte("soon deleted"))
	missing := strings.Replace(s.String(), "gone.", "never.", 1)
	otherNS := strings.Replace(s.String(), "nats://default/", "nats://nobucket/", 1)
	for _, addr := range []string{missing, otherNS} {
		if _, err := f.eng.Retrieve(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("Retrieve %s: %v, want ErrNotFound", addr, err)
		}
		if _, err := f.eng.Stat(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("Stat %s: %v, want ErrNotFound", addr, err)
		}
		if err := f.eng.Delete(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("Delete %s: %v, want ErrNotFound", addr, err)
		}
	}
	if err := f.eng.Delete(ctx, s.String()); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.Delete(ctx, s.String()); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if _, err := f.eng.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Retrieve after Delete: %v, want ErrNotFound", err)
	}
	err := f.store.UpdateAttributes(ctx, "default", s.Address.Key(), &driver.Attributes{Size: 1})
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("UpdateAttributes after Delete: %v, want ErrNotFound", err)
	}
	if _, err := f.store.Stat(ctx, "default", s.Address.Key()); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("UpdateAttributes revived a deleted object: %v", err)
	}
	// Created again after a delete: readable again.
	mustCreate(t, f.eng, "gone", []byte("soon deleted"))
	if _, err := f.eng.Retrieve(ctx, s.String()); err != nil {
		t.Fatalf("Retrieve after re-create: %v", err)
	}
}

func TestCorruptIsIntegrity(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	for _, payload := range [][]byte{randomBytes(t, 300<<10), bytes.Repeat([]byte("zstd "), 100_000)} {
		s := mustCreate(t, f.eng, "bad", payload)
		if err := corrupt(ctx, f.js, f.store.BucketName("default"), s.Address.Key()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.eng.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Fatalf("Retrieve of a corrupt %s stash: %v, want ErrIntegrity", s.Encoding, err)
		}
		r, err := f.eng.Open(ctx, s.String())
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(r)
		r.Close()
		if !errors.Is(err, stash.ErrIntegrity) {
			t.Fatalf("reading a corrupt %s stash: %v, want ErrIntegrity", s.Encoding, err)
		}
	}
}

// TestObjectDigestMismatch: an object whose chunks do not match the object
// store's own digest (what a bad chunk looks like to the client) reads as
// ErrIntegrity, not as some client error.
func TestObjectDigestMismatch(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	s := mustCreate(t, f.eng, "odd", randomBytes(t, 200<<10))
	bucket := f.store.BucketName("default")
	subj := "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(s.Address.Key()))
	st, err := f.js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	var info jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	wrong := sha256.Sum256([]byte("something else"))
	info.Digest = "SHA-256=" + base64.URLEncoding.EncodeToString(wrong[:])
	data, _ := json.Marshal(info)
	msg := nats.NewMsg(subj)
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Data = data
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.store.Get(ctx, "default", s.Address.Key())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("read with a digest mismatch: %v, want ErrIntegrity", err)
	}
	if _, err := f.eng.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Retrieve with a digest mismatch: %v, want ErrIntegrity", err)
	}
}

// TestReadStallFails: an object whose chunks never come (its info points at
// chunks that are not there) fails the read at the context's deadline
// instead of hanging.
func TestReadStallFails(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	mustCreate(t, f.eng, "seed", []byte("makes the bucket"))
	bucket := f.store.BucketName("default")
	k := key("ghost", []byte("ghost"))
	info := jetstream.ObjectInfo{ObjectMeta: jetstream.ObjectMeta{Name: k}, Bucket: bucket, NUID: "nochunkshere", Size: 10, Chunks: 1,
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(make([]byte, 32))}
	data, _ := json.Marshal(info)
	msg := nats.NewMsg("$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(k)))
	msg.Data = data
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	rc, _, err := f.store.Get(short, "default", k)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read of missing chunks: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("read failed only after %v", d)
	}
}

type failingReader struct {
	r     io.Reader
	after int
	err   error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, f.err
	}
	if len(p) > f.after {
		p = p[:f.after]
	}
	n, err := f.r.Read(p)
	f.after -= n
	return n, err
}

// TestFailedPutLeavesNothing: a Put that fails part-way (reader error,
// wrong size, cancelled context) leaves no object and no chunks.
func TestFailedPutLeavesNothing(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	payload := randomBytes(t, 1<<20)
	// Make the bucket exist so its stream can be inspected.
	mustCreate(t, f.eng, "seed", []byte("seed"))
	st, err := f.js.Stream(ctx, "OBJ_"+f.store.BucketName("default"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := info.State.Msgs
	boom := errors.New("disk on fire")
	cancelled, cancel := context.WithCancel(ctx)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		r    io.Reader
		size int64
	}{
		{"reader error", ctx, &failingReader{r: bytes.NewReader(payload), after: 600 << 10, err: boom}, int64(len(payload))},
		{"short", ctx, bytes.NewReader(payload[:700<<10]), int64(len(payload))},
		{"long", ctx, bytes.NewReader(payload), int64(len(payload)) - 1},
		{"cancelled", cancelled, &cancelAfter{r: bytes.NewReader(payload), after: 400 << 10, cancel: cancel}, int64(len(payload))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := key(tc.name, payload)
			attrs := &driver.Attributes{Size: tc.size, StoredSize: tc.size}
			err := f.store.Put(tc.ctx, "default", k, tc.r, tc.size, attrs)
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if tc.name == "reader error" && !errors.Is(err, boom) {
				t.Fatalf("Put: %v, want the reader's error in the chain", err)
			}
			if _, err := f.store.Stat(ctx, "default", k); !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("Stat after a failed Put: %v, want ErrNotFound", err)
			}
			if _, _, err := f.store.Get(ctx, "default", k); !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("Get after a failed Put: %v, want ErrNotFound", err)
			}
		})
	}
	// The partial chunks were purged.
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d messages after failed Puts, want %d", info.State.Msgs, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type cancelAfter struct {
	r      io.Reader
	after  int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.after <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.after -= n
	return n, err
}

func TestUpdateAttributesAndTTI(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	s := mustCreate(t, f.eng, "idle", randomBytes(t, 10<<10), stash.TTI(time.Hour), stash.Metadata(map[string]string{"a": "b"}))
	// Reads within the TTI keep it alive; the engine records them.
	for i := 0; i < 3; i++ {
		f.clock.Advance(50 * time.Minute)
		if _, err := f.eng.Retrieve(ctx, s.String()); err != nil {
			t.Fatalf("read %d within the TTI: %v", i, err)
		}
	}
	st, err := f.eng.Stat(ctx, s.String())
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastAccess.Equal(f.clock.Now()) || st.Metadata["a"] != "b" {
		t.Fatalf("after reads: LastAccess %v (want %v), metadata %v", st.LastAccess, f.clock.Now(), st.Metadata)
	}
	f.clock.Advance(61 * time.Minute)
	if _, err := f.eng.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrExpired) {
		t.Fatalf("read after the TTI: %v, want ErrExpired", err)
	}
	// The bytes were not rewritten: still readable below the engine.
	rc, a, err := f.store.Get(ctx, "default", s.Address.Key())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != a.StoredSize {
		t.Fatalf("raw read after updates: %d bytes, %v", n, err)
	}
}

func TestSweep(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, natsstash.WithBucketPrefix("sw_"))
	short := mustCreate(t, f.eng, "short", []byte("short lived"), stash.TTL(time.Minute))
	short2 := mustCreate(t, f.eng, "short", []byte("short lived too"), stash.TTL(time.Minute), stash.InNamespace("other"))
	long := mustCreate(t, f.eng, "long", []byte("long lived"), stash.TTL(time.Hour))
	forever := mustCreate(t, f.eng, "forever", []byte("no expiry"))
	// A bucket outside the prefix is never listed.
	foreign, err := f.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "someone_else"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := foreign.PutBytes(ctx, "x", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	var listed []string
	err = f.store.List(ctx, func(ns, key string, a *driver.Attributes) error {
		listed = append(listed, ns+"/"+key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 4 {
		t.Fatalf("List saw %v, want the 4 stashes", listed)
	}
	f.clock.Advance(2 * time.Minute)
	n, err := f.eng.Sweep(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2", n, err)
	}
	for _, s := range []*stash.Stash{short, short2} {
		if _, err := f.store.Stat(ctx, s.Namespace(), s.Address.Key()); !errors.Is(err, stash.ErrNotFound) {
			t.Fatalf("%s after Sweep: %v", s, err)
		}
	}
	for _, s := range []*stash.Stash{long, forever} {
		if _, err := f.eng.Retrieve(ctx, s.String()); err != nil {
			t.Fatalf("%s after Sweep: %v", s, err)
		}
	}
	if _, err := foreign.GetInfo(ctx, "x"); err != nil {
		t.Fatalf("Sweep touched a foreign bucket: %v", err)
	}
	stop := errors.New("stop")
	if err := f.store.List(ctx, func(string, string, *driver.Attributes) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("List did not return fn's error: %v", err)
	}
}

// TestBucketTTLChunksGone: in a bucket with a TTL, chunks can age out while
// a later metadata update survives; such an object reads as not found, and
// creating it again writes it afresh.
func TestBucketTTLChunksGone(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, natsstash.WithBucketTTL(time.Hour))
	payload := randomBytes(t, 300<<10)
	s := mustCreate(t, f.eng, "aged", payload)
	bucket := f.store.BucketName("default")
	obs, err := f.js.ObjectStore(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.GetInfo(ctx, s.Address.Key())
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	// What MaxAge does to the chunks, without waiting for it.
	if err := st.Purge(ctx, jetstream.WithPurgeSubject("$O."+bucket+".C."+info.NUID)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Stat(ctx, s.String()); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Stat with aged-out chunks: %v, want ErrNotFound", err)
	}
	if _, err := f.eng.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Retrieve with aged-out chunks: %v, want ErrNotFound", err)
	}
	mustCreate(t, f.eng, "aged", payload)
	got, err := f.eng.Retrieve(ctx, s.String())
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve after re-create: %v", err)
	}
}

// TestForeignObject: an object put by other tools under a stash key, with
// no claimstash attributes, is served and verified against the address.
func TestForeignObject(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	mustCreate(t, f.eng, "seed", []byte("makes the bucket"))
	obs, err := f.js.ObjectStore(ctx, f.store.BucketName("default"))
	if err != nil {
		t.Fatal(err)
	}
	payload := randomBytes(t, 5000)
	k := key("uploaded", payload)
	if _, err := obs.PutBytes(ctx, k, payload); err != nil {
		t.Fatal(err)
	}
	got, err := f.eng.Retrieve(ctx, "nats://default/"+k)
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve of a foreign object: %v", err)
	}
	bad := key("uploaded", []byte("other content"))
	if _, err := obs.PutBytes(ctx, bad, payload); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Retrieve(ctx, "nats://default/"+bad); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("foreign object under the wrong digest: %v, want ErrIntegrity", err)
	}
}

// TestRestart: stashes survive a server restart, and the store rides it out.
func TestRestart(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	payload := randomBytes(t, 2<<20)
	s := mustCreate(t, f.eng, "durable", payload)
	url := f.srv.URL()
	f.srv.Restart(t)
	if f.srv.URL() != url {
		t.Logf("port changed on restart; checking with a new connection only")
	} else {
		// A request written to the old socket before the client notices the
		// restart is lost (and waits for its context): wait for the
		// reconnect, as the store's users would by retrying.
		nc := f.js.Conn()
		deadline := time.Now().Add(10 * time.Second)
		for nc.Stats().Reconnects == 0 || !nc.IsConnected() {
			if time.Now().After(deadline) {
				t.Fatalf("old connection did not reconnect: %v", nc.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
		got, err := f.eng.Retrieve(ctx, s.String())
		if err != nil || !bytes.Equal(got.Data, payload) {
			t.Fatalf("Retrieve over the old connection after restart: %v", err)
		}
		mustCreate(t, f.eng, "after", []byte("written after the restart"))
	}
	store2, err := natsstash.New(f.srv.JetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	eng2, err := stash.New(stash.WithBackend(store2))
	if err != nil {
		t.Fatal(err)
	}
	got, err := eng2.Retrieve(ctx, s.String())
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve over a new connection after restart: %v", err)
	}
}

func TestOpenURL(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	host := strings.TrimPrefix(srv.URL(), "nats://")
	e, err := stash.New(stash.WithBackendURL(ctx, "nats://"+host+"?bucket_prefix=url_&storage=memory&ttl=2h&replicas=1&chunk_size=65536&compression=true&name=test&read_timeout=1m"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Create(ctx, "via-url", randomBytes(t, 200<<10), stash.NoInline())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retrieve(ctx, s.String()); err != nil {
		t.Fatal(err)
	}
	js := srv.JetStream(t)
	obs, err := js.ObjectStore(ctx, "url_default")
	if err != nil {
		t.Fatal(err)
	}
	st, err := obs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != 2*time.Hour || st.Storage() != jetstream.MemoryStorage || !st.IsCompressed() {
		t.Fatalf("bucket from URL: TTL %v storage %v compressed %v", st.TTL(), st.Storage(), st.IsCompressed())
	}
	info, err := obs.GetInfo(ctx, s.Address.Key())
	if err != nil || info.Opts == nil || info.Opts.ChunkSize != 65536 || info.Chunks < 3 {
		t.Fatalf("object from URL: %+v, %v", info, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{
		"nats://" + host + "?bogus=1",
		"nats://" + host + "?replicas=x",
		"nats://" + host + "?replicas=9",
		"nats://" + host + "?storage=tape",
		"nats://" + host + "?ttl=-1h",
		"nats://" + host + "?ttl=soon",
		"nats://" + host + "?bucket_prefix=a.b",
		"nats://" + host + "?chunk_size=99999999999",
		"nats://" + host + "?compression=maybe",
		"nats://" + host + "?read_timeout=-1s",
		"nats://" + host + "?replicas=1&replicas=2",
		"nats://" + host + "/some/path",
		"nats://",
	} {
		if d, err := stash.OpenDriver(ctx, bad); err == nil {
			d.Close()
			t.Errorf("OpenDriver(%q) succeeded", bad)
		}
	}
	// Nothing listening: a clear error, not a hang.
	if _, err := natsstash.OpenURL(ctx, &url.URL{Scheme: "nats", Host: "127.0.0.1:1"}); err == nil {
		t.Error("OpenURL to a closed port succeeded")
	}
}

func TestNewValidates(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	if _, err := natsstash.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	for name, o := range map[string]natsstash.Option{
		"prefix with space": natsstash.WithBucketPrefix("has space"),
		"prefix with dot":   natsstash.WithBucketPrefix("dot."),
		"6 replicas":        natsstash.WithReplicas(6),
		"-1 replicas":       natsstash.WithReplicas(-1),
		"storage 7":         natsstash.WithStorage(jetstream.StorageType(7)),
		"negative TTL":      natsstash.WithBucketTTL(-time.Second),
		"negative timeout":  natsstash.WithReadTimeout(-time.Second),
	} {
		if _, err := natsstash.New(js, o); err == nil {
			t.Errorf("New(%s) succeeded", name)
		}
	}
	s, err := natsstash.New(js)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.BucketName("ns"); got != natsstash.DefaultBucketPrefix+"ns" {
		t.Fatalf("default BucketName = %q", got)
	}
}

func BenchmarkNATSStash(b *testing.B) {
	stashtest.RunBenchmarks(b, newHarness)
}

// TestFullBucketPutLeavesNothing: a Put into a bucket whose stream cannot
// take all of its chunks (a MaxBytes limit, with the object store's
// DiscardNew) fails and leaves no object behind. JetStream refuses the
// chunk that does not fit but takes the small info message published right
// after it, and the client purges only the chunks: the record stayed, so
// Stat reported an object no read could serve, and the next Create of the
// same content reported success for it.
func TestFullBucketPutLeavesNothing(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	if _, err := f.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: f.store.BucketName("full"), MaxBytes: 300 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	payload := randomBytes(t, 1<<20)
	k := key("big", payload)
	size := int64(len(payload))
	if err := f.store.Put(ctx, "full", k, bytes.NewReader(payload), size, &driver.Attributes{Size: size, StoredSize: size}); err == nil {
		t.Fatal("Put into a full bucket succeeded")
	}
	if _, err := f.store.Stat(ctx, "full", k); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Stat after a failed Put: %v, want ErrNotFound", err)
	}
	if _, _, err := f.store.Get(ctx, "full", k); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Get after a failed Put: %v, want ErrNotFound", err)
	}
	// Through the engine: every Create of it fails, none reports a stash.
	for i := range 2 {
		if s, err := f.eng.Create(ctx, "big", payload, stash.InNamespace("full")); err == nil {
			t.Fatalf("Create %d into a full bucket succeeded: %s", i+1, s.Address)
		}
	}
	st, err := f.js.Stream(ctx, "OBJ_"+f.store.BucketName("full"))
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx, jetstream.WithSubjectFilter(fmt.Sprintf("$O.%s.C.>", f.store.BucketName("full"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(si.State.Subjects) != 0 {
		t.Fatalf("chunks left after failed Puts: %v", si.State.Subjects)
	}
	// A payload that fits is stored as usual.
	small := randomBytes(t, 100<<10)
	s := mustCreate(t, f.eng, "small", small, stash.InNamespace("full"))
	got, err := f.eng.Retrieve(ctx, s.Address.String())
	if err != nil || !bytes.Equal(got.Data, small) {
		t.Fatalf("Retrieve of a payload that fits: %v", err)
	}
}

// TestReadDuringDeleteNotFound: a read in flight when the object is deleted
// (its chunks purged under it) fails with ErrNotFound once the chunks it
// has run out, not with a timeout after the whole ReadTimeout.
func TestReadDuringDeleteNotFound(t *testing.T) {
	// No deadline: the client then waits for a chunk up to ReadTimeout at
	// a time, and the reader looks at the object between waits.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := newFixture(t, natsstash.WithChunkSize(16<<10), natsstash.WithReadTimeout(3*time.Second))
	payload := randomBytes(t, 4<<20)
	k := key("deleted-while-read", payload)
	size := int64(len(payload))
	if err := f.store.Put(ctx, "default", k, bytes.NewReader(payload), size, &driver.Attributes{Size: size, StoredSize: size}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.store.Get(ctx, "default", k)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 32<<10)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(ctx, "default", k); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := io.Copy(io.Discard, rc)
	if int64(len(head))+n >= size {
		t.Skipf("the whole object had reached the client before the Delete (%d bytes)", int64(len(head))+n)
	}
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("read after a concurrent Delete: %v after %v, want ErrNotFound", err, time.Since(start))
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("read after a concurrent Delete failed only after %v", d)
	}
}

// TestSlowReaderReadsWhole: a read whose context has no deadline may take
// as long as it needs while data keeps coming: a consumer reading more
// slowly than the client's API timeout (five seconds, which the client
// applied to the whole read) reads the whole object, verified. A read that
// gets nothing for ReadTimeout still fails.
func TestSlowReaderReadsWhole(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := newFixture(t, natsstash.WithChunkSize(16<<10), natsstash.WithReadTimeout(2*time.Second))
	payload := randomBytes(t, 1<<20)
	s := mustCreate(t, f.eng, "slowly-read", payload, stash.Compress(stash.CompressionNone))
	r, err := f.eng.Open(ctx, s.String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow read failed after %v and %d bytes: %v", time.Since(start), got.Len(), err)
		}
		time.Sleep(100 * time.Millisecond) // a read per chunk, 64 of them: over six seconds
		if got.Len() == len(payload)/2 {
			time.Sleep(3 * time.Second) // a pause longer than ReadTimeout, between reads
		}
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("slow read returned %d bytes that are not the payload", got.Len())
	}
	if d := time.Since(start); d < 5*time.Second {
		t.Fatalf("the read took %v, less than the client's five seconds it was to outlast", d)
	}

	// A stall: a record whose chunks never come, read without a deadline.
	bucket := f.store.BucketName("default")
	k := key("stalled", []byte("stalled"))
	info := jetstream.ObjectInfo{ObjectMeta: jetstream.ObjectMeta{Name: k}, Bucket: bucket, NUID: "nochunkshere", Size: 10, Chunks: 1,
		Digest: "SHA-256=" + base64.URLEncoding.EncodeToString(make([]byte, 32))}
	data, _ := json.Marshal(info)
	msg := nats.NewMsg("$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(k)))
	msg.Data = data
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.store.Get(ctx, "default", k)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start = time.Now()
	if _, err := io.ReadAll(rc); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("read of chunks that never come: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("read of chunks that never come failed only after %v, with a ReadTimeout of 2s", d)
	}
}

// TestReadDuringSameReplacementReadsOn: another process's Put of the same
// key (which the package documentation allows: both see it missing) writes
// the same bytes under new chunks and purges the old ones while a read of
// them is in flight. The read goes on from the new object and returns the
// whole payload; it used to fail.
func TestReadDuringSameReplacementReadsOn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := newFixture(t, natsstash.WithChunkSize(16<<10), natsstash.WithReadTimeout(3*time.Second))
	payload := randomBytes(t, 4<<20)
	k := key("replaced-while-read", payload)
	size := int64(len(payload))
	if err := f.store.Put(ctx, "default", k, bytes.NewReader(payload), size, &driver.Attributes{Size: size, StoredSize: size}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.store.Get(ctx, "default", k)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := io.CopyN(&got, rc, 32<<10); err != nil {
		t.Fatal(err)
	}
	// The other process's Put: the same bytes and record, new chunks.
	obs, err := f.js.ObjectStore(ctx, f.store.BucketName("default"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.GetInfo(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	meta := info.ObjectMeta
	meta.Opts = &jetstream.ObjectMetaOptions{ChunkSize: 16 << 10}
	if _, err := obs.Put(ctx, meta, bytes.NewReader(payload)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&got, rc); err != nil {
		t.Fatalf("read on after a replacement by the same bytes: %v (after %d bytes)", err, got.Len())
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("read returned %d bytes that are not the payload", got.Len())
	}

	// Replaced by other bytes under the same key: ErrNotFound, never them.
	other := randomBytes(t, 4<<20)
	rc2, _, err := f.store.Get(ctx, "default", k)
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if _, err := io.CopyN(io.Discard, rc2, 32<<10); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Put(ctx, meta, bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc2)
	if 32<<10+n >= size {
		t.Skipf("the whole object had reached the client before the replacement")
	}
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("read on after a replacement by other bytes: %v, want ErrNotFound", err)
	}
}
