package stash

import (
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
