//go:build !linux

package miniotest

import "os/exec"

// dieWithParent has no portable equivalent outside Linux: Stop and the
// tests' cleanups stop the server.
func dieWithParent(*exec.Cmd) {}
