//go:build !linux

package testproc

import "os/exec"

// DieWithParent has no portable equivalent outside Linux: the harnesses'
// Stop and the tests' cleanups stop their servers.
func DieWithParent(*exec.Cmd, bool) {}

// KillGroup kills cmd as a crash would.
func KillGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
