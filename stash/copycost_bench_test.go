//go:build unix

package stash

import (
	"bytes"
	"crypto/sha256"
	"syscall"
	"testing"
)

// BenchmarkCopyCost: where the time of a 1 MiB copy into fresh memory
// goes beside SHA-256 of the same bytes: the copy into a reused buffer
// (cache speed), bytes.Clone (no zeroing, but pages the runtime gave back
// to the OS fault in again), make alone (zeroing of a reused span, or
// faults), make then copy, and the engine's two side-by-side copies.
// "faults/op" is minor page faults per operation (getrusage).
//
//	go test -run '^$' -bench CopyCost -benchtime 200x ./stash/
func BenchmarkCopyCost(b *testing.B) {
	const n = 1 << 20
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(i * 7)
	}
	reuse := make([]byte, n)
	var keep [][]byte
	hold := func(p []byte) {
		keep = append(keep, p)
		if len(keep) > 8 { // a few live, as stashes a caller holds
			keep = keep[1:]
		}
	}
	h := sha256.New()
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"sha256", func() { sha256.Sum256(src) }},
		{"copy-reused", func() { copy(reuse, src) }},
		{"bytes.Clone", func() { hold(bytes.Clone(src)) }},
		{"make", func() { hold(make([]byte, n)) }},
		{"make+copy", func() { b := make([]byte, n); copy(b, src); hold(b) }},
		{"floor", func() { sha256.Sum256(src); hold(bytes.Clone(src)) }},
		{"cloneSummed", func() { d, _ := cloneSummed(src); hold(d) }},
		{"cloneHashed", func() { h.Reset(); hold(cloneHashed(src, h)) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			keep = nil
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.SetBytes(n)
			for b.Loop() {
				c.f()
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			b.ReportMetric(float64(ru1.Minflt-ru0.Minflt)/float64(b.N), "faults/op")
		})
	}
}
