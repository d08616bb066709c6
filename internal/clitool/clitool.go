// Package clitool finds the third-party command-line clients that the
// interop tests run against what claimstash stores and sends, and runs them:
//
//   - aws, the AWS CLI (1.x), from the virtualenv `make tools` builds
//     (<tools>/venv/bin/aws, pinned in internal/pypeer/requirements.txt), so
//     the tests never depend on a system install of another version;
//   - nats, the NATS CLI (github.com/nats-io/natscli), which `make tools`
//     builds into <tools>/bin/nats from the Go module proxy;
//   - kcat, from the PATH (Debian: apt-get install kcat).
//
// <tools> is $CLAIMSTASH_TOOLS, or <module root>/.tools. A missing client
// skips the test with a one-line reason, except under CI=true, where it fails
// it: a suite that silently skips in CI is a trap.
package clitool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/testproc"
)

// DefaultTimeout bounds a Run whose context has no deadline.
const DefaultTimeout = time.Minute

// AWSPath returns where the virtualenv's aws command is and whether it is
// there.
func AWSPath() (string, bool) { return toolPath("venv", "bin", "aws") }

// NATSPath returns where the nats command `make tools` builds is and whether
// it is there.
func NATSPath() (string, bool) { return toolPath("bin", "nats") }

// AWS returns the virtualenv's aws command, or skips t (fails it under
// CI=true) when it is missing.
func AWS(t testing.TB) string {
	t.Helper()
	p, ok := AWSPath()
	return need(t, p, ok, "aws (awscli from internal/pypeer/requirements.txt)")
}

// NATS returns the nats command, or skips t (fails it under CI=true) when it
// is missing.
func NATS(t testing.TB) string {
	t.Helper()
	p, ok := NATSPath()
	return need(t, p, ok, "nats (the NATS CLI)")
}

// Kcat returns kcat from the PATH, or skips t (fails it under CI=true) when
// it is not installed.
func Kcat(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat not found on the PATH: install it (Debian: apt-get install kcat)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (required under CI=true)")
		}
		t.Skip(msg)
	}
	return p
}

func toolPath(elem ...string) (string, bool) {
	p, ok := testproc.ToolsPath(elem...)
	if !ok {
		return "", false
	}
	fi, err := os.Stat(p)
	return p, err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func need(t testing.TB, path string, ok bool, what string) string {
	t.Helper()
	if !ok {
		msg := fmt.Sprintf("%s not found at %q: run `make tools`", what, path)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (required under CI=true)")
		}
		t.Skip(msg)
	}
	return path
}

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr []byte
	Err            error // nil on exit status 0
}

// Exec runs bin with args, stdin (may be nil) on its standard input and env
// applied to the environment ("K=V" sets K, a bare "K" removes it), and
// returns its output and exit error. It fails t only when the command
// cannot be started or runs out of time.
func Exec(t testing.TB, ctx context.Context, env []string, stdin []byte, bin string, args ...string) Result {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = Environ(env)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: %v (stderr: %s)", bin, args, ctx.Err(), stderr.Bytes())
	}
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Err: err}
}

// Environ is os.Environ with env applied: "K=V" replaces K, a bare "K"
// removes it.
func Environ(env []string) []string {
	drop := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		}
	}
	return out
}

// Run is Exec that fails t on a non-zero exit, with the command's standard
// error, and returns its standard output.
func Run(t testing.TB, ctx context.Context, env []string, stdin []byte, bin string, args ...string) []byte {
	t.Helper()
	r := Exec(t, ctx, env, stdin, bin, args...)
	if r.Err != nil {
		t.Fatalf("%s %q: %v\nstderr:\n%s\nstdout:\n%s", bin, args, r.Err, r.Stderr, r.Stdout)
	}
	return r.Stdout
}

// AWSEnv is the environment for an aws command against a local S3-compatible
// server with the given credentials and region: the machine's own AWS
// configuration and credentials files are replaced by a config file of
// t's own that asks for path-style addressing and SigV4 (MinIO on a loopback
// address has no virtual-host buckets), and instance metadata is never
// consulted. Pass the endpoint with --endpoint-url.
func AWSEnv(t testing.TB, accessKey, secretKey, region string) []string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	conf := "[default]\nregion = " + region + "\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		"AWS_ACCESS_KEY_ID=" + accessKey,
		"AWS_SECRET_ACCESS_KEY=" + secretKey,
		"AWS_SESSION_TOKEN",
		"AWS_PROFILE",
		"AWS_DEFAULT_PROFILE",
		"AWS_DEFAULT_REGION=" + region,
		"AWS_REGION=" + region,
		"AWS_CONFIG_FILE=" + cfg,
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_S3",
		"AWS_PAGER=",
	}
}

// NATSEnv is the environment for a nats command against url: the machine's
// own NATS contexts are ignored (a configuration directory of t's own), the
// server is url, and output is not coloured. Give it --no-context as well.
func NATSEnv(t testing.TB, url string) []string {
	t.Helper()
	dir := t.TempDir()
	return []string{
		"NATS_URL=" + url,
		"XDG_CONFIG_HOME=" + dir,
		"HOME=" + dir,
		"NATS_CONTEXT",
		"NATS_USER", "NATS_PASSWORD", "NATS_TOKEN", "NATS_CREDS", "NATS_NKEY",
		"NO_COLOR=1",
		"TERM=dumb",
	}
}
