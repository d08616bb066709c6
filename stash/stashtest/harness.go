// Package stashtest is the conformance suite every stash backend runs, in
// the spirit of Go CDK's drivertest: a new backend is one package, one
// Harness and one TestConformance line:
//
//	func TestConformance(t *testing.T) {
//		stashtest.RunConformanceTests(t, newHarness)
//	}
//
// It also ships the benchmarks every backend runs (RunBenchmarks).
package stashtest

import (
	"context"
	"testing"

	"github.com/claimstash/claimstash/stash/driver"
)

// Harness gives the suite a backend to test.
type Harness interface {
	// MakeDriver returns a driver over fresh, empty storage. The suite
	// closes it.
	MakeDriver(ctx context.Context) (driver.Driver, error)
	// Corrupt flips one stored byte of the object under namespace/key (any
	// byte of the payload, not of its attributes), as a disk or a bad copy
	// would. It is how the suite checks that reads verify integrity.
	Corrupt(ctx context.Context, namespace, key string) error
	// Close releases what the harness holds.
	Close()
}

// HarnessMaker makes a Harness for one test.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// BenchHarnessMaker makes a Harness for RunBenchmarks. A maker written
// against testing.TB serves both entry points:
//
//	func newHarness(ctx context.Context, tb testing.TB) (stashtest.Harness, error) { ... }
//
//	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
//		return newHarness(ctx, t)
//	})
//	stashtest.RunBenchmarks(b, newHarness)
type BenchHarnessMaker func(ctx context.Context, tb testing.TB) (Harness, error)
