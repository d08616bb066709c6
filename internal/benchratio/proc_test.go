package benchratio_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/claimstash/claimstash/internal/benchratio"
)

func TestCPU(t *testing.T) {
	x := 0
	for i := range 50_000_000 { // some CPU to count
		x += i % 7
	}
	runtime.KeepAlive(x)
	if runtime.GOOS != "linux" {
		t.Skip("CPU time is read from getrusage and /proc, on Linux")
	}
	if benchratio.CPUTime() <= 0 {
		t.Error("no CPU time for this process")
	}
	if benchratio.ProcessCPU(os.Getpid()) <= 0 {
		t.Error("no CPU time read from /proc for this process")
	}
	if benchratio.ProcessCPU(-1) != 0 {
		t.Error("a process that does not exist has CPU time")
	}
}
