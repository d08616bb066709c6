//go:build !linux

package kafkabroker

import "os/exec"

// ownGroup has no portable equivalent outside Linux: Stop, StopShared and
// the tests' cleanups stop the broker.
func ownGroup(*exec.Cmd) {}

// killGroup kills the JVM as a crash would.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
