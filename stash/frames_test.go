package stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// storedZstd creates payload on a mem engine and returns the bytes the
// backend holds, which must be zstd.
func storedZstd(t *testing.T, payload []byte) []byte {
	t.Helper()
	ctx := context.Background()
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.Create(ctx, "frames", payload)
	if err != nil {
		t.Fatal(err)
	}
	if s.Encoding != driver.EncodingZstd {
		t.Fatalf("stored as %q, want zstd", s.Encoding)
	}
	got, err := e.Retrieve(ctx, s.String())
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve: %v (equal: %v)", err, err == nil && bytes.Equal(got.Data, payload))
	}
	rc, _, err := store.Get(ctx, s.Address.Namespace, s.Address.Key())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	stored, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// countFrames walks the zstd frames of p by their block headers.
func countFrames(t *testing.T, p []byte) int {
	t.Helper()
	n := 0
	for len(p) > 0 {
		var h zstd.Header
		if err := h.Decode(p); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		p = p[h.HeaderSize:]
		for {
			if len(p) < 3 {
				t.Fatalf("frame %d: truncated block header", n)
			}
			bh := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
			last, typ, size := bh&1 == 1, (bh>>1)&3, int(bh>>3)
			if typ == 1 { // RLE: one byte stored
				size = 1
			}
			p = p[3+size:]
			if last {
				break
			}
		}
		if h.HasCheckSum {
			p = p[4:]
		}
		n++
	}
	return n
}

// TestFramesReadEverywhere: a compressed payload larger than one frame is
// stored as several zstd frames one after another, and every reader of
// stored bytes reads them as the whole payload: the engine (above), the
// zstd decoder on its own, the zstd command, and python-zstandard's
// readers across frames (the objectstore client reads with
// stream_reader(read_across_frames=True)). python-zstandard's one-shot
// decompress, and its readers by default, stop after the first frame.
func TestFramesReadEverywhere(t *testing.T) {
	payload := stashtest.JSONPayload(1<<20+12345, 7)
	stored := storedZstd(t, payload)
	if n := countFrames(t, stored); n != 5 {
		t.Fatalf("%d frames, want 5 (256 KiB each)", n)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	if got, err := dec.DecodeAll(stored, nil); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("zstd DecodeAll: %d bytes, %v", len(got), err)
	}
	sum := sha256.Sum256(payload)
	want := hex.EncodeToString(sum[:])
	file := filepath.Join(t.TempDir(), "stored.zst")
	if err := os.WriteFile(file, stored, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("zstd-command", func(t *testing.T) {
		bin, err := exec.LookPath("zstd")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("zstd command missing under CI=true (apt-get install zstd)")
			}
			t.Skip("zstd command not installed (apt-get install zstd)")
		}
		out, err := exec.Command(bin, "-d", "-c", file).Output()
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("zstd -d: %d bytes, %v", len(out), err)
		}
	})
	t.Run("python", func(t *testing.T) {
		const script = `
import hashlib, sys, zstandard
data = open(sys.argv[1], "rb").read()
across = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
u = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(data)
first = zstandard.ZstdDecompressor().decompress(data)
print(hashlib.sha256(across).hexdigest(), hashlib.sha256(u).hexdigest(), len(first))
`
		out := strings.Fields(string(pypeer.Run(t, context.Background(), nil, "-c", script, file)))
		if len(out) != 3 {
			t.Fatalf("python printed %q", out)
		}
		if out[0] != want {
			t.Errorf("zstandard stream_reader(read_across_frames=True): digest %s, want %s", out[0], want)
		}
		if out[1] != want {
			t.Errorf("zstandard decompressobj(read_across_frames=True): digest %s, want %s", out[1], want)
		}
		// The one-shot decompress reads only the first frame: a reader
		// that uses it must pass read_across_frames=True.
		if n, _ := strconv.Atoi(out[2]); n != 256<<10 {
			t.Errorf("zstandard decompress read %s bytes, want the first frame (%d)", out[2], 256<<10)
		}
	})
}

// TestFramesBounds: stored bytes of several frames are decoded frame by
// frame in parallel only when their headers add up to the recorded size,
// and no frame decodes past the content size its header gives.
func TestFramesBounds(t *testing.T) {
	e, store := memEngine(t)
	rawFrame := func(fcs byte, payload []byte) []byte {
		// Single segment, a one-byte content size, one raw last block.
		h := uint32(1) | uint32(len(payload))<<3
		return append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, fcs, byte(h), byte(h >> 8), byte(h >> 16)}, payload...)
	}
	ten := []byte("0123456789")
	t.Run("FrameLongerThanItsHeader", func(t *testing.T) {
		stored := append(rawFrame(10, ten), rawFrame(5, ten)...)
		addr := putRaw(t, store, "lying-frame", append(append([]byte{}, ten...), ten[:5]...), stored, driver.EncodingZstd, 15)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})
	t.Run("HeadersOverRecorded", func(t *testing.T) {
		stored := append(rawFrame(10, ten), rawFrame(10, ten)...)
		addr := putRaw(t, store, "over", append(append([]byte{}, ten...), ten[:5]...), stored, driver.EncodingZstd, 15)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrTooLarge) || !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrTooLarge and ErrIntegrity", err)
			}
		}
	})
	t.Run("CorruptFrame", func(t *testing.T) {
		p := stashtest.JSONPayload(1<<20, 5)
		stored := storedZstd(t, p)
		stored[len(stored)/2] ^= 0x40
		addr := putRaw(t, store, "corrupt", p, stored, driver.EncodingZstd, int64(len(p)))
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})
	t.Run("OtherWritersFrames", func(t *testing.T) {
		// Frames with checksums, RLE blocks and sizes of their own.
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		p := append(make([]byte, 300_000), stashtest.JSONPayload(500_000, 6)...)
		stored := enc.EncodeAll(p[:123_456], nil)
		stored = enc.EncodeAll(p[123_456:400_000], stored)
		stored = enc.EncodeAll(p[400_000:], stored)
		if n := countFrames(t, stored); n != 3 {
			t.Fatalf("%d frames", n)
		}
		addr := putRaw(t, store, "others", p, stored, driver.EncodingZstd, int64(len(p)))
		got, err := e.Retrieve(context.Background(), addr)
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve: %v", err)
		}
	})
}
