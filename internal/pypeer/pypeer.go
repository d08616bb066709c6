// Package pypeer runs Python test peers (the official objectstore client,
// msgpack-python, boto3) from the virtualenv that `make tools` builds in
// <module root>/.tools/venv (or $CLAIMSTASH_TOOLS/venv) from
// requirements.txt beside this file.
//
// When the virtualenv is missing, Python skips the test with a one-line
// reason, except under CI=true, where it fails the test: a suite that silently
// skips in CI is a trap.
package pypeer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/testproc"
)

// Interpreter returns the path of the virtualenv's python and whether it
// exists.
func Interpreter() (string, bool) {
	path, ok := testproc.ToolsPath("venv", "bin", "python")
	if !ok {
		return "", false
	}
	fi, err := os.Stat(path)
	return path, err == nil && !fi.IsDir()
}

// Python returns the virtualenv's python, or skips t (fails it under
// CI=true) when `make tools` has not built the virtualenv.
func Python(t testing.TB) string {
	t.Helper()
	path, ok := Interpreter()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python peers: %s missing under CI=true (run make tools)", path)
		}
		t.Skipf("python peers not installed (run make tools): %s", path)
	}
	return path
}

// Run runs python with args (a script path and its arguments, or "-c",
// code), with env applied to the environment ("K=V" sets K, a bare "K"
// removes it), and returns its standard output. A non-zero exit fails t
// with the script's standard error.
func Run(t testing.TB, ctx context.Context, env []string, args ...string) []byte {
	t.Helper()
	return RunStdin(t, ctx, env, nil, args...)
}

// RunStdin is Run with stdin (nil: none) on the script's standard input.
func RunStdin(t testing.TB, ctx context.Context, env []string, stdin []byte, args ...string) []byte {
	t.Helper()
	py := Python(t)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Env = clitool.Environ(env)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python %v: %v\nstderr:\n%s\nstdout:\n%s", args, err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes()
}
