//go:build !unix

package s3stash_test

import "time"

// selfCPU is not measured here: BenchmarkTransfer's cpu-x-raw then counts
// the server's CPU only where /proc has it, and is absent otherwise.
func selfCPU() time.Duration { return 0 }
