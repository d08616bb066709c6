package testproc

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes the kernel kill cmd if the test binary dies first (a
// timeout panic, a kill), so no server outlives its tests. With group, cmd
// also gets a process group of its own, so KillGroup reaches every process
// it starts.
func DieWithParent(cmd *exec.Cmd, group bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGKILL}
}

// KillGroup kills cmd's process group (or cmd alone, if it has none) as a
// crash would.
func KillGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
