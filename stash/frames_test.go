package stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// storedZstd creates payload on a mem engine (with CreateFrom if from) and
// returns the bytes the backend holds, which must be zstd, after checking
// that the engine reads them back.
func storedZstd(t *testing.T, payload []byte, from bool) []byte {
	t.Helper()
	ctx := context.Background()
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	var s *stash.Stash
	if from {
		s, err = e.CreateFrom(ctx, "frames", bytes.NewReader(payload))
	} else {
		s, err = e.Create(ctx, "frames", payload)
	}
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

// countFrames walks the zstd frames of p by their headers (zstd.Header)
// and block headers, to the last byte.
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
			if len(p) < 3+size {
				t.Fatalf("frame %d: truncated block", n)
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

// TestOneFrameEverySize: whatever its size, and whether it comes through
// Create or CreateFrom (in memory up to the spool size, spooled to a file
// beyond), a compressed payload is stored as exactly one zstd frame, with
// nothing after it: readers that stop after the first frame must see all
// of it.
func TestOneFrameEverySize(t *testing.T) {
	sizes := []int{100 << 10, 256 << 10, 1 << 20, 8 << 20, 8<<20 + 12345, 64 << 20}
	if testing.Short() {
		sizes = sizes[:4]
	}
	for _, size := range sizes {
		payload := stashtest.JSONPayload(size, 11)
		for _, from := range []bool{false, true} {
			name := fmt.Sprintf("%dKiB/Create", size>>10)
			if from {
				name = fmt.Sprintf("%dKiB/CreateFrom", size>>10)
			}
			t.Run(name, func(t *testing.T) {
				stored := storedZstd(t, payload, from)
				if n := countFrames(t, stored); n != 1 {
					t.Fatalf("%d zstd frames, want one", n)
				}
				var h zstd.Header
				if err := h.Decode(stored); err != nil || h.HasFCS && h.FrameContentSize != uint64(size) {
					t.Fatalf("frame header: content size %d (given: %v), want %d; %v", h.FrameContentSize, h.HasFCS, size, err)
				}
			})
		}
	}
}

// TestOneFrameReadEverywhere: the stored bytes of compressed payloads (one
// small enough for the calling goroutine, one compressed by a helper, one
// by the section-parallel encoder) are read whole by every reader of stored
// bytes: the zstd decoder on its own, the zstd command, and
// python-zstandard's readers, including the one-shot decompress and the
// stream reader without read_across_frames, which read only the first
// frame.
func TestOneFrameReadEverywhere(t *testing.T) {
	for _, size := range []int{100 << 10, 1<<20 + 12345, 9<<20 + 777} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			payload := stashtest.JSONPayload(size, 7)
			stored := storedZstd(t, payload, false)
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
first = zstandard.ZstdDecompressor().decompress(data)
stream = zstandard.ZstdDecompressor().stream_reader(data).read()
across = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
obj = zstandard.ZstdDecompressor().decompressobj().decompress(data)
print(*(hashlib.sha256(d).hexdigest() for d in (first, stream, across, obj)))
`
				out := strings.Fields(string(pypeer.Run(t, context.Background(), nil, "-c", script, file)))
				if len(out) != 4 {
					t.Fatalf("python printed %q", out)
				}
				for k, name := range []string{"decompress (one shot, first frame only)", "stream_reader",
					"stream_reader(read_across_frames=True)", "decompressobj"} {
					if out[k] != want {
						t.Errorf("zstandard %s: digest %s, want %s", name, out[k], want)
					}
				}
			})
		})
	}
}

// TestFramesBounds: stored bytes of several frames, as other writers may
// store them (RFC 8878 allows it), are read as one stream under the same
// bounds: a frame longer than its header, frames that add up to more than
// the recorded size and a corrupt frame are refused; other writers' frames
// (checksums, RLE blocks, sizes of their own) are read.
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
		stored := storedZstd(t, p, false)
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

// TestDecodeAheadBounds: Retrieve of a compressed stash from 256 KiB
// decodes on a helper while it hashes; it keeps the bounds of the stream
// path: stored bytes that decode to more than the recorded size are
// ErrTooLarge (and ErrIntegrity), to fewer are ErrIntegrity, corrupt ones
// ErrIntegrity, and another writer's several frames read whole.
func TestDecodeAheadBounds(t *testing.T) {
	e, store := memEngine(t)
	p := stashtest.JSONPayload(1<<20+3, 8)
	stored := storedZstd(t, p, false)
	n := int64(len(p))
	t.Run("Overlong", func(t *testing.T) {
		addr := putRaw(t, store, "overlong", p[:n-1], stored, driver.EncodingZstd, n-1)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrTooLarge) || !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrTooLarge and ErrIntegrity", err)
			}
		}
	})
	t.Run("Short", func(t *testing.T) {
		addr := putRaw(t, store, "short", append(append([]byte{}, p...), 'x'), stored, driver.EncodingZstd, n+1)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})
	t.Run("WrongDigest", func(t *testing.T) {
		q := append([]byte{}, p...)
		q[len(q)/2] ^= 1
		addr := putRaw(t, store, "digest", q, stored, driver.EncodingZstd, n)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		addr := putRaw(t, store, "truncated", p, stored[:len(stored)-100], driver.EncodingZstd, n)
		rerr, oerr := readBoth(t, e, addr)
		for _, err := range []error{rerr, oerr} {
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("got %v, want ErrIntegrity", err)
			}
		}
	})
	t.Run("OtherWritersFrames", func(t *testing.T) {
		two := append(zstdOf(t, p[:300_000]), zstdOf(t, p[300_000:])...)
		addr := putRaw(t, store, "two", p, two, driver.EncodingZstd, n)
		got, err := e.Retrieve(context.Background(), addr)
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve: %v", err)
		}
	})
}
