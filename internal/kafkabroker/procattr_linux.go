package kafkabroker

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the JVM in a process group of its own, so killGroup reaches
// every process it starts, and makes the kernel kill it if the test binary
// dies first (a timeout panic, a kill), so no broker outlives its tests.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills cmd's process group as a crash would.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
