// Package benchratio measures one path against another in a single Go
// benchmark: the two run in alternating batches, so that load from other
// processes on a shared machine hits both, and the figures are medians of
// the per-batch ratios. Only benchmarks import it.
package benchratio

import (
	"flag"
	"runtime"
	"slices"
	"testing"
	"time"
)

// side runs one side of each interleaved benchmark alone, for
// instruction counts (valgrind --tool=callgrind), which do not depend on
// the machine's load and need no interleaving: the instructions per message
// of a path are the difference between two runs of different lengths.
var side = flag.String("bench.side", "", "run only the `plain` or the `decorated` side of the interleaved benchmarks")

// Path is one way of moving messages: Prepare makes n messages ready
// (outside the clock and the allocation count), Run moves them.
type Path struct {
	Prepare func(n int)
	Run     func(n int)
}

// Interleave measures decorated against plain in alternating batches of
// batch messages in one run, so that a load spike from another process hits
// both, and reports per message:
//
//   - ratio: the median of the per-batch ratios decorated/plain (the
//     figure the targets are stated in);
//   - ratio-total: total decorated time over total plain time;
//   - ns/msg-plain, ns/msg-decorated;
//   - cpu-ratio: the median of the per-batch ratios of the process's CPU
//     time (every goroutine's, the scheduler's and the GC's included),
//     which other processes' load moves less than wall-clock time;
//   - allocs/msg-plain and extra-allocs/msg (decorated minus plain; the
//     allocations of every goroutine in the process are counted, so the
//     undecorated path's own goroutines are in both).
//
// b.N counts messages of each path.
func Interleave(b *testing.B, batch int, plain, decorated Path) {
	b.Helper()
	if *side != "" {
		p := plain
		if *side == "decorated" {
			p = decorated
		}
		p.Prepare(batch)
		p.Run(batch)
		b.ResetTimer()
		for range max(1, b.N/batch) {
			b.StopTimer()
			p.Prepare(batch)
			b.StartTimer()
			p.Run(batch)
		}
		return
	}
	var ms runtime.MemStats
	var tPlain, tDec time.Duration
	var aPlain, aDec uint64
	one := func(p Path, d *time.Duration, allocs *uint64) (wall, cpu time.Duration) {
		p.Prepare(batch)
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		c0 := CPUTime()
		start := time.Now()
		p.Run(batch)
		wall = time.Since(start)
		cpu = CPUTime() - c0
		runtime.ReadMemStats(&ms)
		*d += wall
		*allocs += ms.Mallocs - before
		return wall, cpu
	}
	// Warm both up (goroutines started, pools and maps grown).
	for range 2 {
		one(plain, new(time.Duration), new(uint64))
		one(decorated, new(time.Duration), new(uint64))
	}
	b.ResetTimer()
	rounds := max(1, b.N/batch)
	ratios := make([]float64, 0, rounds)
	cpuRatios := make([]float64, 0, rounds)
	for r := range rounds {
		var tp, td, cp, cd time.Duration
		if r%2 == 0 {
			tp, cp = one(plain, &tPlain, &aPlain)
			td, cd = one(decorated, &tDec, &aDec)
		} else {
			td, cd = one(decorated, &tDec, &aDec)
			tp, cp = one(plain, &tPlain, &aPlain)
		}
		ratios = append(ratios, float64(td)/float64(tp))
		if cp > 0 {
			cpuRatios = append(cpuRatios, float64(cd)/float64(cp))
		}
	}
	b.StopTimer()
	slices.Sort(ratios)
	slices.Sort(cpuRatios)
	if len(cpuRatios) > 0 {
		b.ReportMetric(cpuRatios[len(cpuRatios)/2], "cpu-ratio")
	}
	n := float64(rounds * batch)
	b.ReportMetric(0, "ns/op") // meaningless here: both paths run per op
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "ns/msg-plain")
	b.ReportMetric(float64(tDec.Nanoseconds())/n, "ns/msg-decorated")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric(float64(tDec)/float64(tPlain), "ratio-total")
	b.ReportMetric(float64(aPlain)/n, "allocs/msg-plain")
	b.ReportMetric((float64(aDec)-float64(aPlain))/n, "extra-allocs/msg")
}
