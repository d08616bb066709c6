package stash_test

import (
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// TestEntropyEstimate: the sample (an eighth of the payload, 512 bytes to
// 4 KiB)
// never takes random bytes for compressible nor JSON for incompressible.
func TestEntropyEstimate(t *testing.T) {
	for _, n := range []int{512, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 1 << 20} {
		for seed := uint64(1); seed <= 100; seed++ {
			if stash.LikelyCompressible(stashtest.RandomPayload(n, seed)) {
				t.Fatalf("random, %d bytes, seed %d: judged compressible", n, seed)
			}
			if !stash.LikelyCompressible(stashtest.JSONPayload(n, seed)) {
				t.Fatalf("JSON, %d bytes, seed %d: judged incompressible", n, seed)
			}
		}
	}
}
