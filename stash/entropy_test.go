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

// TestEntropyTwoSteps: the first step (256 bytes) ends the count only for
// samples the whole sample would also have judged random, over many seeds
// of random bytes and JSON, and a payload of 7 bits per byte (each byte
// one of 128 values) always goes on to the whole sample and is tried.
func TestEntropyTwoSteps(t *testing.T) {
	for _, n := range []int{4 << 10, 16 << 10, 64 << 10} {
		ended := 0
		const seeds = 2000
		for seed := uint64(1); seed <= seeds; seed++ {
			quick, whole := stash.CollisionEstimates(stashtest.RandomPayload(n, seed))
			if whole < stash.MaxEntropy {
				t.Fatalf("random, %d bytes, seed %d: %.3f bits over the whole sample", n, seed, whole)
			}
			if quick >= stash.QuickEntropy {
				ended++
			}
			quick, whole = stash.CollisionEstimates(stashtest.JSONPayload(n, seed))
			if quick >= stash.QuickEntropy-1 || whole >= stash.MaxEntropy-1 {
				t.Fatalf("JSON, %d bytes, seed %d: %.3f bits over the first step, %.3f over the whole sample", n, seed, quick, whole)
			}
			p := stashtest.RandomPayload(n, seed)
			for i := range p {
				p[i] &= 0x7f
			}
			if quick, _ := stash.CollisionEstimates(p); quick >= stash.QuickEntropy || !stash.LikelyCompressible(p) {
				t.Fatalf("7 bits a byte, %d bytes, seed %d: %.3f bits over the first step, judged incompressible", n, seed, quick)
			}
		}
		// Most random payloads end at the first step (what it is for);
		// the share is about 98%.
		if ended < seeds*9/10 {
			t.Errorf("random, %d bytes: %d of %d seeds ended at the first step, want 90%% or more", n, ended, seeds)
		}
	}
}
