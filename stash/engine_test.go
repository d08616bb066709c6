package stash_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
	"github.com/klauspost/compress/zstd"
)

// memEngine is an engine over a fresh memstash store, inline disabled.
func memEngine(t testing.TB, opts ...stash.Option) (*stash.Engine, *memstash.Store) {
	t.Helper()
	store := memstash.New()
	e, err := stash.New(append([]stash.Option{stash.WithBackend(store), stash.WithInlineMax(-1)}, opts...)...)
	if err != nil {
		t.Fatalf("stash.New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e, store
}

// putRaw stores raw bytes under the address of want with the given
// encoding and recorded size, as a hostile or broken writer could.
func putRaw(t *testing.T, store *memstash.Store, name string, want []byte, stored []byte, enc driver.Encoding, size int64) string {
	t.Helper()
	a := stash.Address{Scheme: memstash.Scheme, Namespace: "default", Name: name, Digest: sha(want)}
	attrs := &driver.Attributes{Size: size, StoredSize: int64(len(stored)), Encoding: enc, Digest: a.Digest, Created: time.Now()}
	if err := store.Put(context.Background(), a.Namespace, a.Key(), bytes.NewReader(stored), int64(len(stored)), attrs); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return a.String()
}

func zstdOf(t *testing.T, p []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(p, nil)
}

// readBoth reads address with Retrieve and with Open to the end, and
// returns the two errors; it fails the test if either returned data as if
// it were good.
func readBoth(t *testing.T, e *stash.Engine, address string) (retrieveErr, openErr error) {
	t.Helper()
	s, err := e.Retrieve(context.Background(), address)
	if err == nil || s != nil {
		t.Fatalf("Retrieve succeeded (%v), want an error", s != nil)
	}
	r, oerr := e.Open(context.Background(), address)
	if oerr != nil {
		return err, oerr
	}
	defer r.Close()
	_, oerr = io.Copy(io.Discard, r)
	if oerr == nil {
		t.Fatalf("Open read to a clean EOF, want an error")
	}
	return err, oerr
}

func TestDecompressionBombs(t *testing.T) {
	e, store := memEngine(t)
	big := make([]byte, 4<<20) // zeros: a tiny frame
	frame := zstdOf(t, big)

	t.Run("MoreThanRecorded", func(t *testing.T) {
		addr := putRaw(t, store, "bomb", big[:1000], frame, driver.EncodingZstd, 1000)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrTooLarge) || !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrTooLarge (and ErrIntegrity)", err)
			}
		}
	})

	t.Run("FewerThanRecorded", func(t *testing.T) {
		small := zstdOf(t, big[:100])
		addr := putRaw(t, store, "short", big[:1000], small, driver.EncodingZstd, 1000)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})

	t.Run("Garbage", func(t *testing.T) {
		garbage := stashtest.RandomPayload(10_000, 9)
		addr := putRaw(t, store, "garbage", big[:50_000], garbage, driver.EncodingZstd, 50_000)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})

	t.Run("TruncatedFrame", func(t *testing.T) {
		p := stashtest.JSONPayload(200_000, 3)
		z := zstdOf(t, p)
		addr := putRaw(t, store, "truncated", p, z[:len(z)/2], driver.EncodingZstd, int64(len(p)))
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})

	// Frames that ask the decoder for a huge window: refused before any
	// allocation of that size.
	rawBlock := func(payload []byte) []byte {
		h := uint32(1) | uint32(len(payload))<<3 // last block, raw
		return append([]byte{byte(h), byte(h >> 8), byte(h >> 16)}, payload...)
	}
	magic := []byte{0x28, 0xb5, 0x2f, 0xfd}
	hugeWindow := append(append(append([]byte{}, magic...), 0x00, 20<<3), rawBlock([]byte("hello"))...) // 1 GiB window
	fcs := make([]byte, 8)
	binary.LittleEndian.PutUint64(fcs, 1<<40)
	hugeContent := append(append(append(append([]byte{}, magic...), 0xe0), fcs...), rawBlock([]byte("hello"))...) // single segment, FCS 1 TiB
	for _, c := range []struct {
		name  string
		frame []byte
	}{{"HugeWindow", hugeWindow}, {"HugeContentSize", hugeContent}} {
		t.Run(c.name, func(t *testing.T) {
			addr := putRaw(t, store, strings.ToLower(c.name), []byte("hello"), c.frame, driver.EncodingZstd, 5)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rerr, oerr := readBoth(t, e, addr)
			runtime.ReadMemStats(&after)
			for _, err := range []error{rerr, oerr} {
				if !errors.Is(err, stash.ErrTooLarge) && !errors.Is(err, stash.ErrIntegrity) {
					t.Errorf("got %v, want ErrTooLarge or ErrIntegrity", err)
				}
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
				t.Errorf("refusing the frame allocated %d MiB", n>>20)
			}
		})
	}

	t.Run("RecordedSizeOverLimit", func(t *testing.T) {
		small, smallStore := memEngine(t, stash.WithMaxSize(1<<20))
		p := stashtest.RandomPayload(2<<20, 4)
		addr := putRaw(t, smallStore, "big", p, p, driver.EncodingIdentity, int64(len(p)))
		_, err := small.Retrieve(context.Background(), addr)
		if !errors.Is(err, stash.ErrTooLarge) {
			t.Errorf("Retrieve: %v, want ErrTooLarge", err)
		}
		_, err = small.Open(context.Background(), addr)
		if !errors.Is(err, stash.ErrTooLarge) {
			t.Errorf("Open: %v, want ErrTooLarge", err)
		}
	})

	t.Run("UnknownEncoding", func(t *testing.T) {
		p := []byte("some bytes")
		addr := putRaw(t, store, "brotli", p, p, driver.Encoding("br"), int64(len(p)))
		_, err := e.Retrieve(context.Background(), addr)
		if !errors.Is(err, stash.ErrUnsupported) {
			t.Errorf("Retrieve: %v, want ErrUnsupported", err)
		}
	})

	t.Run("StoredDigestDiffers", func(t *testing.T) {
		p := []byte("some bytes")
		a := stash.Address{Scheme: memstash.Scheme, Namespace: "default", Name: "lying", Digest: sha(p)}
		attrs := &driver.Attributes{Size: int64(len(p)), StoredSize: int64(len(p)), Digest: sha([]byte("other")), Created: time.Now()}
		if err := store.Put(context.Background(), a.Namespace, a.Key(), bytes.NewReader(p), int64(len(p)), attrs); err != nil {
			t.Fatal(err)
		}
		_, err := e.Retrieve(context.Background(), a.String())
		if !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve: %v, want ErrIntegrity", err)
		}
	})
}

func TestCompression(t *testing.T) {
	ctx := context.Background()
	e, _ := memEngine(t)
	json := stashtest.JSONPayload(300_000, 1)
	random := stashtest.RandomPayload(300_000, 1)
	for _, c := range []struct {
		name    string
		payload []byte
		opts    []stash.CreateOption
		want    driver.Encoding
	}{
		{"auto-json", json, nil, driver.EncodingZstd},
		{"auto-random", random, nil, driver.EncodingIdentity},
		{"auto-below-floor", json[:stash.DefaultCompressFloor-1], nil, driver.EncodingIdentity},
		{"none-json", json, []stash.CreateOption{stash.Compress(stash.CompressionNone)}, driver.EncodingIdentity},
		{"zstd-small-json", json[:1000], []stash.CreateOption{stash.Compress(stash.CompressionZstd)}, driver.EncodingZstd},
		{"zstd-random", random, []stash.CreateOption{stash.Compress(stash.CompressionZstd)}, driver.EncodingIdentity},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				var s *stash.Stash
				var err error
				if stream {
					s, err = e.CreateFrom(ctx, c.name, bytes.NewReader(c.payload), c.opts...)
				} else {
					s, err = e.Create(ctx, c.name, c.payload, c.opts...)
				}
				if err != nil {
					t.Fatal(err)
				}
				if s.Encoding != c.want {
					t.Errorf("stream=%v: encoding %q, want %q", stream, s.Encoding, c.want)
				}
				if s.Encoding == driver.EncodingZstd && s.StoredSize >= s.Size {
					t.Errorf("stream=%v: zstd stored %d bytes for %d", stream, s.StoredSize, s.Size)
				}
				got, err := e.Retrieve(ctx, s.String())
				if err != nil || !bytes.Equal(got.Data, c.payload) {
					t.Fatalf("Retrieve: %v", err)
				}
				if err := e.Delete(ctx, s.String()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestCreateFromSpooled covers the temp-file path: same address as Create,
// compression overrides, size limit, temp files removed, failing readers.
func TestCreateFromSpooled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, _ := memEngine(t, stash.WithTempDir(dir), stash.WithMaxSize(20<<20))
	json := stashtest.JSONPayload(stash.DefaultSpoolMemory+5000, 1)
	random := stashtest.RandomPayload(stash.DefaultSpoolMemory+5000, 2)
	checkNoTemp := func(t *testing.T) {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("temp dir holds %d files after CreateFrom, want none", len(ents))
		}
	}
	for _, c := range []struct {
		name    string
		payload []byte
		c       stash.Compression
		want    driver.Encoding
	}{
		{"json-auto", json, stash.CompressionAuto, driver.EncodingZstd},
		{"json-none", json, stash.CompressionNone, driver.EncodingIdentity},
		{"random-auto", random, stash.CompressionAuto, driver.EncodingIdentity},
		{"random-zstd", random, stash.CompressionZstd, driver.EncodingIdentity},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := stash.Compress(c.c)
			s, err := e.CreateFrom(ctx, c.name, iotest.HalfReader(bytes.NewReader(c.payload)), opt, stash.ContentType("x/y"))
			if err != nil {
				t.Fatalf("CreateFrom: %v", err)
			}
			checkNoTemp(t)
			if s.Data != nil {
				t.Errorf("CreateFrom returned Data")
			}
			if s.Encoding != c.want || s.Size != int64(len(c.payload)) || s.ContentType != "x/y" {
				t.Errorf("stash %q, %d bytes, %q; want %q, %d, x/y", s.Encoding, s.Size, s.ContentType, c.want, len(c.payload))
			}
			s2, err := e.Create(ctx, c.name, c.payload, opt)
			if err != nil {
				t.Fatal(err)
			}
			if s2.String() != s.String() {
				t.Errorf("Create gave %s, CreateFrom %s", s2, s)
			}
			got, err := e.Retrieve(ctx, s.String())
			if err != nil || !bytes.Equal(got.Data, c.payload) {
				t.Fatalf("Retrieve: %v", err)
			}
		})
	}

	t.Run("TooLarge", func(t *testing.T) {
		for _, n := range []int64{20<<20 + 1, 1 << 40} {
			r := &countingReader{r: io.LimitReader(zeros{}, n)}
			_, err := e.CreateFrom(ctx, "huge", r)
			if !errors.Is(err, stash.ErrTooLarge) {
				t.Errorf("CreateFrom of %d bytes: %v, want ErrTooLarge", n, err)
			}
			if r.n > 20<<20+1 {
				t.Errorf("CreateFrom read %d bytes of a stream over the limit of %d", r.n, 20<<20)
			}
			checkNoTemp(t)
		}
		small, _ := memEngine(t, stash.WithMaxSize(1000))
		_, err := small.CreateFrom(ctx, "x", bytes.NewReader(make([]byte, 1001)))
		if !errors.Is(err, stash.ErrTooLarge) {
			t.Errorf("CreateFrom of 1001 bytes over a limit of 1000: %v, want ErrTooLarge", err)
		}
		if _, err := small.CreateFrom(ctx, "x", bytes.NewReader(make([]byte, 1000))); err != nil {
			t.Errorf("CreateFrom of 1000 bytes with a limit of 1000: %v", err)
		}
	})

	t.Run("FailingReader", func(t *testing.T) {
		boom := errors.New("connection reset")
		for _, at := range []int{10, stash.DefaultSpoolMemory + 10} {
			r := io.MultiReader(bytes.NewReader(random[:at]), iotest.ErrReader(boom))
			_, err := e.CreateFrom(ctx, "failing", r)
			if !errors.Is(err, boom) {
				t.Errorf("CreateFrom failing after %d bytes: %v, want the reader's error", at, err)
			}
			checkNoTemp(t)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(random), n: stash.DefaultSpoolMemory + 1, cancel: cancel}
		_, err := e.CreateFrom(cctx, "cancelled", r)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("CreateFrom cancelled midway: %v, want context.Canceled", err)
		}
		checkNoTemp(t)
	})

	t.Run("BadTempDir", func(t *testing.T) {
		bad, _ := memEngine(t, stash.WithTempDir(dir+"/missing"))
		if _, err := bad.CreateFrom(ctx, "x", bytes.NewReader(random)); err == nil {
			t.Errorf("CreateFrom with a missing temp dir succeeded")
		}
		// Small payloads never touch it.
		if _, err := bad.CreateFrom(ctx, "x", bytes.NewReader(random[:1000])); err != nil {
			t.Errorf("CreateFrom of a small payload: %v", err)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestCreateFromBoundedMemory: streaming 64 MiB allocates, beyond the
// spool buffer and zstd encoder it keeps for good, well under 8 MiB (under
// 2 MiB here). After a first run, every run counts, each after two GCs: a
// sync.Pool alone would have dropped the buffer and the encoder by then (and
// the race detector drops a quarter of what is put back), as it would in a
// long-running process now and then. The file store's own 1 MiB copy
// buffer, which it does not keep, is in the count.
func TestCreateFromBoundedMemory(t *testing.T) {
	ctx := context.Background()
	// A store on disk: a store in memory allocates its own copy of the
	// stored bytes (and, reading a plain reader, more as it grows), which
	// is not the engine's.
	store, err := filestash.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), stash.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const size = 64 << 20
	// Random tiles longer than the zstd window stay incompressible.
	tiles := map[bool][]byte{false: stashtest.RandomPayload(8<<20, 1), true: stashtest.JSONPayload(64<<10, 1)}
	for _, compressible := range []bool{false, true} {
		worst := int64(0)
		for run := range 4 {
			runtime.GC()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			s, err := e.CreateFrom(ctx, "big", &patternReader{n: size, tile: tiles[compressible]})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatalf("CreateFrom: %v", err)
			}
			if (s.Encoding == driver.EncodingZstd) != compressible {
				t.Fatalf("compressible=%v: stored as %q", compressible, s.Encoding)
			}
			if run > 0 {
				worst = max(worst, int64(after.TotalAlloc-before.TotalAlloc))
			}
			r, err := e.Open(ctx, s.String())
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, r)
			r.Close()
			if err != nil || n != size {
				t.Fatalf("Open: read %d, %v", n, err)
			}
			if err := e.Delete(ctx, s.String()); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("compressible=%v: CreateFrom of 64 MiB allocated up to %d KiB", compressible, worst>>10)
		if worst > 2<<20 {
			t.Errorf("compressible=%v: CreateFrom of 64 MiB allocated up to %d KiB, want under 2 MiB", compressible, worst>>10)
		}
	}
}

// patternReader yields n bytes by repeating tile, without holding them.
type patternReader struct {
	n, off int
	tile   []byte
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	b = b[:min(len(b), p.n-p.off)]
	for done := 0; done < len(b); {
		c := copy(b[done:], p.tile[(p.off+done)%len(p.tile):])
		done += c
	}
	p.off += len(b)
	return len(b), nil
}

func TestReader(t *testing.T) {
	ctx := context.Background()
	e, store := memEngine(t)
	p := stashtest.RandomPayload(100_000, 5)

	t.Run("IdentityOverlong", func(t *testing.T) {
		addr := putRaw(t, store, "overlong", p[:1000], p, "", 1000)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrTooLarge) {
				t.Errorf("got %v, want ErrTooLarge", err)
			}
		}
	})

	t.Run("IdentityShort", func(t *testing.T) {
		addr := putRaw(t, store, "short", p, p[:1000], "", int64(len(p)))
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})

	t.Run("MD5Address", func(t *testing.T) {
		// kstash's legacy addresses verify with MD5.
		sum := md5.Sum(p)
		a := stash.Address{Scheme: memstash.Scheme, Namespace: "default", Name: "legacy", Digest: hex.EncodeToString(sum[:])}
		attrs := &driver.Attributes{Size: int64(len(p)), StoredSize: int64(len(p)), Digest: a.Digest, Created: time.Now()}
		if err := store.Put(ctx, a.Namespace, a.Key(), bytes.NewReader(p), int64(len(p)), attrs); err != nil {
			t.Fatal(err)
		}
		got, err := e.Retrieve(ctx, a.String())
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve of an MD5 address: %v", err)
		}
		store.Corrupt(a.Namespace, a.Key(), 500)
		if _, err := e.Retrieve(ctx, a.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve of a corrupted MD5 stash: %v, want ErrIntegrity", err)
		}
	})

	t.Run("Inline", func(t *testing.T) {
		ie, err := stash.New()
		if err != nil {
			t.Fatal(err)
		}
		s, err := ie.Create(ctx, "tiny", []byte("tiny"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := ie.Open(ctx, s.String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != "tiny" || r.Size() != 4 || r.Stash().Data != nil {
			t.Errorf("Open of an inline stash: %q, %v, size %d", got, err, r.Size())
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		// An engine without a backend for a scheme refuses its addresses.
		_, err = ie.Retrieve(ctx, "mem://default/x."+sha([]byte("x")))
		if !errors.Is(err, stash.ErrUnsupported) {
			t.Errorf("Retrieve without a mem backend: %v, want ErrUnsupported", err)
		}
		_, err = ie.Create(ctx, "big", p)
		if !errors.Is(err, stash.ErrTooLarge) {
			t.Errorf("Create of %d bytes without a backend: %v, want ErrTooLarge", len(p), err)
		}
	})

	t.Run("ErrorNamesAddress", func(t *testing.T) {
		addr := "mem://default/missing." + sha([]byte("missing"))
		_, err := e.Retrieve(ctx, addr)
		var se *stash.Error
		if !errors.As(err, &se) || se.Op != "retrieve" || se.Address != addr || !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("Retrieve of a missing stash: %v, want a *stash.Error for retrieve %s matching ErrNotFound", err, addr)
		}
		if !strings.HasPrefix(err.Error(), "stash: retrieve "+addr) {
			t.Errorf("error text %q", err)
		}
	})
}

// failingPuts is memstash with Put overridden to fail, as a test's fault
// injection embeds a store: every write goes through the override.
type failingPuts struct{ *memstash.Store }

var errPutDown = errors.New("test: put down")

func (failingPuts) Put(context.Context, string, string, io.Reader, int64, *driver.Attributes) error {
	return errPutDown
}

// TestEmbeddedPutOverrideSeesEveryWrite: a wrapper that embeds a store
// which keeps bytes (driver.BytesKeeper) and overrides Put sees every
// write of every size, so its failure is the Create's; nothing is stored
// behind its back.
func TestEmbeddedPutOverrideSeesEveryWrite(t *testing.T) {
	inner := memstash.New()
	e, err := stash.New(stash.WithBackend(failingPuts{inner}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10, 64 << 10, 1 << 20, 4 << 20} {
		_, err := e.Create(context.Background(), "ns", stashtest.RandomPayload(size, uint64(size)))
		if !errors.Is(err, errPutDown) {
			t.Errorf("%d bytes: Create %v, want the override's error", size, err)
		}
	}
	n := 0
	_ = inner.List(context.Background(), func(string, string, *driver.Attributes) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d objects stored past the failing Put", n)
	}
}

// TestOwnedBytesReadFromIsCopied: a Put handed an OwnedBytes that was
// read from keeps only what is left, by copying it, never the whole.
func TestOwnedBytesReadFromIsCopied(t *testing.T) {
	data := []byte("0123456789")
	o := driver.NewOwnedBytes(data)
	if got := o.Owned(); &got[0] != &data[0] {
		t.Fatal("an unread OwnedBytes does not hand over its bytes")
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(o, buf); err != nil {
		t.Fatal(err)
	}
	if o.Owned() != nil {
		t.Fatal("an OwnedBytes read from still hands over all its bytes")
	}
	m := memstash.New()
	if err := m.Put(context.Background(), "ns", "k", o, 7, &driver.Attributes{Size: 7, StoredSize: 7}); err != nil {
		t.Fatal(err)
	}
	r, _, err := m.Get(context.Background(), "ns", "k")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "3456789" {
		t.Fatalf("stored %q, want the unread rest", got)
	}
}

// TestStashString: the stash Create returns gives the address its key was
// built from, and, once its Address is changed (a field, or a scope in
// place), what the changed Address formats to.
func TestStashString(t *testing.T) {
	ctx := context.Background()
	e, _ := memEngine(t)
	payload := stashtest.RandomPayload(4<<10, 3)
	s, err := e.Create(ctx, "report", payload, stash.InScopes(stash.Scope{Key: "tenant", Value: "acme"}))
	if err != nil {
		t.Fatal(err)
	}
	want := s.Address.String()
	if got := s.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	got, err := e.Retrieve(ctx, s.String())
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve(String()): %v", err)
	}
	for _, change := range []struct {
		name string
		fn   func(a *stash.Address)
	}{
		{"scheme", func(a *stash.Address) { a.Scheme = "other" }},
		{"namespace", func(a *stash.Address) { a.Namespace = "elsewhere" }},
		{"name", func(a *stash.Address) { a.Name = "rename" }},
		{"name of the same length", func(a *stash.Address) { a.Name = "tropor" }},
		{"digest", func(a *stash.Address) { a.Digest = strings.Repeat("0", 64) }},
		{"scope in place", func(a *stash.Address) { a.Scopes[0].Value = "acmf" }},
		{"no scopes", func(a *stash.Address) { a.Scopes = nil }},
		{"inline", func(a *stash.Address) { a.Scheme, a.Digest, a.Data = stash.SchemeInline, "", []byte("x") }},
	} {
		c := *s
		c.Address.Scopes = append([]stash.Scope(nil), s.Address.Scopes...)
		change.fn(&c.Address)
		if got, want := c.String(), c.Address.String(); got != want {
			t.Errorf("%s: String() = %q, want %q", change.name, got, want)
		}
	}
	if got := s.String(); got != want {
		t.Fatalf("String() after copies changed = %q, want %q", got, want)
	}
}

// takenPuts is memstash with a Put that always finds the key taken, while
// its Stat finds nothing: a backend that refuses a write as taken yet has
// nothing to serve (an expired leftover that only its writes still see).
type takenPuts struct{ *memstash.Store }

func (takenPuts) Put(context.Context, string, string, io.Reader, int64, *driver.Attributes) error {
	return fmt.Errorf("%w: test: taken", driver.ErrExists)
}

// TestCreateNeverReportsAnUnreadableWrite: when every Put is refused as
// taken and nothing can be read under the key, Create fails (naming the
// backend's answer) rather than returning a stash nobody can read.
func TestCreateNeverReportsAnUnreadableWrite(t *testing.T) {
	e, err := stash.New(stash.WithBackend(takenPuts{memstash.New()}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, size := range []int{10, 1 << 20} {
		s, err := e.Create(context.Background(), "ns", stashtest.RandomPayload(size, uint64(size)))
		if err == nil {
			t.Fatalf("%d bytes: Create returned %s for content that cannot be read", size, s)
		}
		if !errors.Is(err, driver.ErrExists) || !strings.Contains(err.Error(), "serves no stash") {
			t.Errorf("%d bytes: Create: %v, want the refused write named", size, err)
		}
	}
}

// emptyAnswers is memstash whose reads report success without what was
// asked for: no attributes, or no reader, as a broken third-party driver
// could.
type emptyAnswers struct {
	*memstash.Store
	noReader bool
}

func (d emptyAnswers) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := d.Store.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	if d.noReader {
		rc.Close()
		return nil, a, nil
	}
	return rc, nil, nil
}

func (emptyAnswers) Stat(context.Context, string, string) (*driver.Attributes, error) {
	return nil, nil
}

func (emptyAnswers) ModifyAttributes(context.Context, string, string, func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	return nil, nil
}

func (d emptyAnswers) List(ctx context.Context, fn func(ns, key string, a *driver.Attributes) error) error {
	return d.Store.List(ctx, func(ns, key string, _ *driver.Attributes) error { return fn(ns, key, nil) })
}

// TestDriverAnsweringNothing: a driver that reports success without the
// stash's attributes or reader is an error for every operation (ErrIntegrity),
// never a panic and never data; listing and sweeping pass over its entries.
func TestDriverAnsweringNothing(t *testing.T) {
	ctx := context.Background()
	for _, noReader := range []bool{false, true} {
		store := memstash.New()
		good, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
		if err != nil {
			t.Fatal(err)
		}
		s, err := good.Create(ctx, "ns", []byte("payload"), stash.TTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		e, err := stash.New(stash.WithBackend(emptyAnswers{store, noReader}), stash.WithInlineMax(-1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Retrieve(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve (no reader %v): %v, want ErrIntegrity", noReader, err)
		}
		if _, err := e.Open(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Open: %v, want ErrIntegrity", err)
		}
		if _, err := e.Stat(ctx, s.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Stat: %v, want ErrIntegrity", err)
		}
		if _, err := e.Create(ctx, "ns", []byte("payload"), stash.TTL(2*time.Hour)); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Create over it: %v, want ErrIntegrity", err)
		}
		if _, err := e.Share(ctx, s.String(), time.Minute); err == nil {
			t.Error("Share: no error")
		}
		n := 0
		if err := e.List(ctx, "", func(*stash.Stash) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("List: %d stashes, %v; want none listed", n, err)
		}
		if _, err := e.Sweep(ctx); err != nil {
			t.Errorf("Sweep: %v", err)
		}
	}
}
