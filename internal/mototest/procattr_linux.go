package mototest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill moto if the test binary dies first.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
