//go:build unix

package benchratio

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time the process has used, user and system, all
// threads: what the machine spent on a path, whatever else runs beside it.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
