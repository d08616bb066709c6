// Package javapeer runs the Java test peers: AWS's Java SQS and SNS
// extended clients (amazon-sqs-java-extended-client-lib, sns-extended-client),
// built from Maven Central by `make tools` into <module root>/.tools/javapeer
// (or $CLAIMSTASH_TOOLS/javapeer) from pom.xml and src/ beside this file.
//
// When the build or java is missing, Run skips the test with a one-line
// reason, except under CI=true, where it fails the test.
package javapeer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/testproc"
)

// Run runs the peer (src/main/java/ExtendedPeer.java) with args, with env
// applied to the environment ("K=V" sets K, a bare "K" removes it), and
// returns its standard output. A non-zero exit fails t with the peer's
// standard error.
func Run(t testing.TB, ctx context.Context, env []string, args ...string) []byte {
	t.Helper()
	dir, _ := testproc.ToolsPath("javapeer")
	jar := filepath.Join(dir, "build", "extended-peer.jar")
	java, haveJava := testproc.Java()
	if _, err := os.Stat(jar); err != nil || !haveJava {
		if os.Getenv("CI") == "true" {
			t.Fatalf("java peers: %s or java missing under CI=true (run make tools)", jar)
		}
		t.Skipf("java peers not built, or no java (run make tools): %s", jar)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	cp := jar + string(os.PathListSeparator) + filepath.Join(dir, "lib", "*")
	cmd := exec.CommandContext(ctx, java, append([]string{"-cp", cp, "ExtendedPeer"}, args...)...)
	cmd.Env = clitool.Environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("java peer %v: %v\nstderr:\n%s\nstdout:\n%s", args, err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes()
}
