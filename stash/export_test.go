package stash

import (
	"bytes"
	"crypto/sha256"
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
