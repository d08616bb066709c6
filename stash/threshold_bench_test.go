package stash_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// BenchmarkCompressThresholds measures where Create's ways of compressing
// one frame start paying, interleaved in one loop on non-repeating JSON:
// "serial" hashes the payload, then compresses it with EncodeAll on the
// same goroutine (below overlapMin, and with one P); "helper" compresses
// it on a helper goroutine through the streaming encoder with asynchronous
// blocks while this one hashes (from overlapMin); "sections" is the helper
// with the section-parallel encoder (from parallelMin). It reports each
// one's time over serial's (median of per-round ratios; under 1 pays) and
// serial's MB/s.
//
//	go test -run '^$' -bench CompressThresholds -benchtime 20x ./stash/
func BenchmarkCompressThresholds(b *testing.B) {
	serial := stash.CompressSerialForBench
	ways := []struct {
		name string
		f    func([]byte)
	}{{"helper", stash.CompressHelperForBench(false)}, {"sections", stash.CompressHelperForBench(true)}}
	for _, size := range []int{64 << 10, 128 << 10, 256 << 10, 512 << 10, 768 << 10, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 64 << 20} {
		p := stashtest.JSONPayload(size, 5)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			ratios := make([][]float64, len(ways))
			var total time.Duration
			for range b.N {
				t0 := time.Now()
				serial(p)
				ts := time.Since(t0)
				total += ts
				for k, w := range ways {
					t0 := time.Now()
					w.f(p)
					ratios[k] = append(ratios[k], float64(time.Since(t0))/float64(ts))
				}
			}
			for k, w := range ways {
				r := ratios[k]
				sort.Float64s(r)
				b.ReportMetric(r[len(r)/2], "x-time-"+w.name)
			}
			b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/1e6, "MB/s-serial")
		})
	}
}
