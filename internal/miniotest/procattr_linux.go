package miniotest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill minio if the test binary dies first
// (a timeout panic, a kill), so no server outlives its tests.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
