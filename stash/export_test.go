package stash

import (
	"bytes"
	"crypto/sha256"
	"math"
	"sync/atomic"

	"github.com/claimstash/claimstash/stash/driver"
)

// EncodeForBench exposes the engine's encoder to the external benchmarks:
// it returns the stored size CompressionAuto would pick for p.
func EncodeForBench(p []byte) int {
	out, enc := encode(CompressionAuto, 0, p)
	n := len(out)
	if enc == driver.EncodingZstd {
		putBuffer(out)
	}
	return n
}

// ZstdWindowForBench is the encoder window.
const ZstdWindowForBench = zstdWindow

// LikelyCompressible is the entropy estimate CompressionAuto decides by.
var LikelyCompressible = likelyCompressible

// Entropy thresholds of likelyCompressible.
const (
	MaxEntropy   = maxEntropy
	QuickEntropy = quickEntropy
)

// CollisionEstimates returns likelyCompressible's two estimates of p's
// collision entropy (bits per byte): over the first step's 256 bytes and
// over the whole sample, counted as likelyCompressible counts them. p must
// be longer than 512 bytes.
func CollisionEstimates(p []byte) (quick, whole float64) {
	var counts [256]uint32
	n := min(len(p), sampleSize, max(len(p)/8, 512))
	piece := n / 4
	first := min(piece, quickPiece)
	var pairs uint64
	estimate := func(n int) float64 {
		return -math.Log2(float64(pairs) / (float64(n) * float64(n-1) / 2))
	}
	for i := range 4 {
		pairs += equalPairs(&counts, p[(len(p)-piece)*i/3:][:first])
	}
	quick = estimate(4 * first)
	for i := range 4 {
		pairs += equalPairs(&counts, p[(len(p)-piece)*i/3+first:][:piece-first])
	}
	return quick, estimate(4 * piece)
}

// CompressSerialForBench hashes p, then compresses it with EncodeAll on
// this goroutine.
func CompressSerialForBench(p []byte) {
	_ = sha256.Sum256(p)
	enc := getEncoder()
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(len(p)/2 + 64)
	out := enc.EncodeAll(p, buf.AvailableBuffer())
	putEncoder(enc)
	putBuffer(out)
}

// CompressHelperForBench compresses p on a helper goroutine through the
// streaming encoder (section-parallel or not) while this one hashes it.
func CompressHelperForBench(sections bool) func(p []byte) {
	return func(p []byte) {
		done := make(chan []byte)
		go func() {
			var stop atomic.Bool
			done <- compressStreamWith(p, &stop, sections)
		}()
		_ = sha256.Sum256(p)
		putBuffer(<-done)
	}
}

// SetSequentialReads makes Retrieve read and hash a stream in turn, as it
// did before readAhead (BenchmarkStreamAhead's other side).
func SetSequentialReads(on bool) { sequentialReads.Store(on) }
