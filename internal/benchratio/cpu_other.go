//go:build !unix

package benchratio

import "time"

// CPUTime is not measured here: it is 0, and the CPU ratios are left out.
func CPUTime() time.Duration { return 0 }
