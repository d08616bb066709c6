package stash

import "github.com/claimstash/claimstash/stash/driver"

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
