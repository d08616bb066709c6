package stash

import (
	"bytes"
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"testing"
)

// TestEntropyTable: the table-driven entropy is the textbook sum.
func TestEntropyTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 100, sampleSize, 3 * sampleSize} {
		for range 20 {
			var counts [256]int
			width := 1 + rng.IntN(256)
			for range n {
				counts[rng.IntN(width)]++
			}
			want := 0.0
			for _, c := range counts {
				if c > 0 {
					q := float64(c) / float64(n)
					want -= q * math.Log2(q)
				}
			}
			if got := entropy(&counts, n); math.Abs(got-want) > 1e-9 {
				t.Fatalf("n %d width %d: entropy %v, want %v", n, width, got, want)
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

// TestSplitFrames: the engine's own frames are found and decoded in
// parallel; anything else is left to the stream decoder.
func TestSplitFrames(t *testing.T) {
	p := make([]byte, 1<<20+100)
	for i := range p {
		p[i] = "abcdefgh{}\":, 0123456789"[i*7%24]
	}
	comp := compressAll(p)
	defer putBuffer(comp)
	spans, ok := splitFrames(comp, int64(len(p)))
	if !ok || len(spans) != 5 {
		t.Fatalf("splitFrames: %d spans, %v", len(spans), ok)
	}
	h := sha256.New()
	got, err := decodeFrames(comp, spans, int64(len(p)), h)
	if err != nil || !bytes.Equal(got, p) {
		t.Fatalf("decodeFrames: %v", err)
	}
	if want := sha256.Sum256(p); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("hash is not of the payload in order")
	}
	for _, c := range []struct {
		name string
		comp []byte
		size int64
	}{
		{"recorded size smaller", comp, int64(len(p)) - 1},
		{"recorded size larger", comp, int64(len(p)) + 1},
		{"truncated", comp[:len(comp)-1], int64(len(p))},
		{"one frame", comp[:spans[0].hi], frameSize},
		{"trailing byte", append(append([]byte{}, comp...), 0), int64(len(p))},
	} {
		// Either left to the stream decoder, or refused frame by frame
		// (the last frame leaves its content size out).
		if spans, ok := splitFrames(c.comp, c.size); ok {
			if _, err := decodeFrames(c.comp, spans, c.size, sha256.New()); err == nil {
				t.Errorf("%s: decoded", c.name)
			}
		}
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
