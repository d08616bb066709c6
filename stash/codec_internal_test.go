package stash

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestEqualPairs: the pairs counted byte by byte, over pieces of any
// length, are the textbook sum of c(c-1)/2 over the byte counts.
func TestEqualPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 8, 9, 100, 512, sampleSize, 3 * sampleSize} {
		for range 20 {
			width := 1 + rng.IntN(256)
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.IntN(width))
			}
			var counts [256]uint32
			var got uint64
			for q := p; len(q) > 0; {
				k := min(len(q), 1+rng.IntN(40))
				got += equalPairs(&counts, q[:k])
				q = q[k:]
			}
			var want uint64
			var c [256]uint64
			for _, x := range p {
				c[x]++
			}
			for i, k := range c {
				want += k * (k - 1) / 2
				if uint64(counts[i]) != k {
					t.Fatalf("n %d: count of %d is %d, want %d", n, i, counts[i], k)
				}
			}
			if got != want {
				t.Fatalf("n %d width %d: %d equal pairs, want %d", n, width, got, want)
			}
		}
	}
}

// TestCloneHashed: the copy is the source and the hash is the copy's,
// whether the helper copies ahead or not, for sizes around the chunks.
func TestCloneHashed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, copyAheadMin - 1, copyAheadMin, copyAheadMin + 1, 5*copyChunk + 17, 1 << 20, 3<<20 + 5} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		for range 3 {
			h := sha256.New()
			got := cloneHashed(src, h)
			if !bytes.Equal(got, src) || got == nil {
				t.Fatalf("%d bytes: copy differs", n)
			}
			if n > 0 && &got[0] == &src[0] {
				t.Fatalf("%d bytes: not a copy", n)
			}
			if want := sha256.Sum256(src); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("%d bytes: hash is not of the payload", n)
			}
		}
	}
}

// TestCompressOneFrame: on each side of the thresholds (the calling
// goroutine, a helper, the section-parallel encoder), a payload compresses
// to one frame that decodes to it; a cancelled compression returns only
// once nothing touches the payload (the race detector would see a write
// after it otherwise).
func TestCompressOneFrame(t *testing.T) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, n := range []int{5000, overlapMin - 1, overlapMin, 3*feedChunk + 5, parallelMin, parallelMin + 4*parallelWindow + 3} {
		p := make([]byte, n)
		for i := range p {
			p[i] = "abcdefgh{}\":, 0123456789"[(i*7+i/1000)%24]
		}
		comp := compressAll(p)
		var h zstd.Header
		if err := h.Decode(comp); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := dec.DecodeAll(comp, nil)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: decode: %v", n, err)
		}
		// DecodeAll reads every frame; the first alone must be all of it.
		var first zstd.Header
		_ = first.Decode(comp)
		if !first.HasFCS || first.FrameContentSize != uint64(n) {
			t.Fatalf("%d bytes: first frame says %d bytes (given: %v)", n, first.FrameContentSize, first.HasFCS)
		}
		putBuffer(comp)

		c := startCompress(p)
		c.cancel()
		p[0], p[n-1] = 'x', 'y' // the payload is the caller's again
	}
}

// TestCloneSummed: Create's copy is the payload and the sum is its SHA-256.
func TestCloneSummed(t *testing.T) {
	for _, n := range []int{0, 5, copyAheadMin, 3*copyChunk + 1, 2<<20 + 3} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 131)
		}
		got, sum := cloneSummed(src)
		if !bytes.Equal(got, src) || got == nil || n > 0 && &got[0] == &src[0] {
			t.Fatalf("%d bytes: not a copy", n)
		}
		if sum != sha256.Sum256(src) {
			t.Fatalf("%d bytes: wrong sum", n)
		}
	}
}

// TestHexPairs: encodeHex is encoding/hex's lowercase form, and hexEqual
// tells a digest from every other one a byte or a character away.
func TestHexPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		sum := make([]byte, 32)
		for i := range sum {
			sum[i] = byte(rng.Uint32())
		}
		got := make([]byte, 64)
		encodeHex(got, sum)
		if want := hex.EncodeToString(sum); string(got) != want {
			t.Fatalf("encodeHex %s, want %s", got, want)
		}
		if !hexEqual(sum, string(got)) {
			t.Fatalf("hexEqual(%x, its own hex) is false", sum)
		}
		i := rng.IntN(64)
		for _, c := range []byte("0123456789abcdefABCDEF.") {
			bad := bytes.Clone(got)
			if bad[i] == c {
				continue
			}
			bad[i] = c
			if hexEqual(sum, string(bad)) {
				t.Fatalf("hexEqual(%x, %s) is true", sum, bad)
			}
		}
		if hexEqual(sum, string(got[:62])) || hexEqual(sum[:31], string(got)) {
			t.Fatal("hexEqual of different lengths is true")
		}
	}
}
