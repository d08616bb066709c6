package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// buildCLI builds the command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "claimstash")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// needTool skips when a tool is missing, except under CI=true, where the
// test fails instead.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install %s)", name, name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// TestProgressInTerminal draws put's and get's progress in a real terminal
// (tmux) 60 and 200 columns wide: no line is wider than the terminal, and
// while get streams its line shows the stash's name, the bytes so far and
// the time left.
func TestProgressInTerminal(t *testing.T) {
	tmux := needTool(t, "tmux")
	bin := buildCLI(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "a-rather-long-stash-name-for-the-bar.bin")
	if err := os.WriteFile(src, randomBytes(24<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	eta := regexp.MustCompile(`\[\d+s:\d+s\]`)
	for _, width := range []int{60, 200} {
		session := "w" + itoa(width)
		socket := filepath.Join(dir, session+".sock") // a server of its own
		store := filepath.Join(dir, session)          // and a store: put must write
		if err := os.Mkdir(store, 0o700); err != nil {
			t.Fatal(err)
		}
		tm := func(args ...string) (string, error) {
			out, err := exec.Command(tmux, append([]string{"-S", socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
			return string(out), err
		}
		t.Cleanup(func() { _, _ = tm("kill-server") })
		// get streams (--verify-buffer 1) into a reader that takes about
		// 6 MiB a second, so the bar is caught mid-way.
		script := strings.Join([]string{
			"A=$(" + bin + " put --backend " + store + " " + src + ")",
			bin + " get --backend " + store + " --verify-buffer 1 $A | (i=0; while [ $i -lt 96 ]; do dd bs=256k count=1 iflag=fullblock of=/dev/null status=none; sleep 0.04; i=$((i+1)); done; cat >/dev/null)",
			"echo FINISHED",
			"sleep 60",
		}, "; ")
		if out, err := tm("new-session", "-d", "-x", itoa(width), "-y", "30", "-s", session, "sh", "-c", script); err != nil {
			t.Fatalf("tmux new-session: %v %s", err, out)
		}
		var screens []string
		midway := false
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(150 * time.Millisecond)
			screen, err := tm("capture-pane", "-p", "-J", "-t", session)
			if err != nil {
				t.Fatalf("capture-pane: %v %s", err, screen)
			}
			screens = append(screens, screen)
			for _, line := range strings.Split(screen, "\n") {
				if strings.HasPrefix(line, "get a-r") && !strings.Contains(line, "100%") && eta.MatchString(line) && strings.Contains(line, "MiB") {
					midway = true
				}
			}
			if strings.Contains(screen, "FINISHED") {
				break
			}
		}
		last := screens[len(screens)-1]
		if !strings.Contains(last, "FINISHED") {
			t.Fatalf("%d columns: the commands did not finish:\n%s", width, last)
		}
		for _, screen := range screens {
			for _, line := range strings.Split(screen, "\n") {
				if n := utf8.RuneCountInString(strings.TrimRight(line, " ")); n > width {
					t.Errorf("%d columns: a line of %d:\n%q", width, n, line)
				}
			}
		}
		if !midway {
			t.Errorf("%d columns: no screen showed get's name, bytes and time left mid-way; last screen:\n%s", width, last)
		}
		for _, want := range []string{"read a-r", "store a-r", "get a-r"} {
			if !strings.Contains(last, want) {
				t.Errorf("%d columns: the last screen lacks %q:\n%s", width, want, last)
			}
		}
		if width == 200 && !strings.Contains(last, "store a-rather-long-stash-name-for-the-bar.bin 100%") {
			t.Errorf("200 columns: the store bar does not end at 100%% with the whole name:\n%s", last)
		}
	}
}

// TestProgressQuietAndPiped: no bar with --quiet or when stderr is not a
// terminal; a bar with the name otherwise.
func TestProgressQuietAndPiped(t *testing.T) {
	be, _ := backend(t)
	data := randomBytes(6 << 20)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "six")
	if _, errs, code := cli(t, nil, "get", be, addr); code != 0 || errs != "" {
		t.Errorf("get with stderr not a terminal: exit %d, stderr %q", code, errs)
	}
	for _, quiet := range []bool{false, true} {
		var out, errb bytes.Buffer
		a := newApp(strings.NewReader(""), &out, &errb)
		a.terminal, a.width = true, func() int { return 100 }
		args := []string{"get", be, addr}
		if quiet {
			args = append(args, "-q")
		}
		if code := a.run(context.Background(), args); code != 0 || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("get: exit %d, %d bytes; %s", code, out.Len(), errb.String())
		}
		s := errb.String()
		if quiet && s != "" {
			t.Errorf("-q: stderr %q", s)
		}
		if !quiet && (!strings.Contains(s, "get six 100%") || !strings.Contains(s, "6.0/6.0 MiB") || !strings.HasSuffix(s, "\n")) {
			t.Errorf("progress on a terminal: %q", s)
		}
	}
}

// TestInterrupt sends SIGINT to the built command: put, blocked reading a
// stdin that never ends, exits 130; serve shuts down gracefully and exits 0.
func TestInterrupt(t *testing.T) {
	bin := buildCLI(t)
	be, _ := backend(t)
	start := func(args ...string) (*exec.Cmd, *bytes.Buffer, io.WriteCloser) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		return cmd, &stderr, stdin
	}
	wait := func(cmd *exec.Cmd) int {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			return cmd.ProcessState.ExitCode()
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("did not exit after SIGINT")
		}
		return -1
	}

	put, stderr, stdin := start("put", be, "-")
	if _, err := stdin.Write(randomBytes(1 << 20)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_ = put.Process.Signal(os.Interrupt)
	if code := wait(put); code != 130 {
		t.Errorf("put interrupted: exit %d, want 130; %s", code, stderr)
	}
	stdin.Close()

	// The default 5 s drain outlasts the 3 s after which other commands
	// are ended: serve's shutdown is its own.
	serve, stderr, _ := start("serve", be, "--listen", "127.0.0.1:0", "--link-keys", linkKeys(), "--no-api")
	time.Sleep(500 * time.Millisecond)
	_ = serve.Process.Signal(os.Interrupt)
	if code := wait(serve); code != 0 || !strings.Contains(stderr.String(), "shut down") {
		t.Errorf("serve interrupted: exit %d, want 0; %s", code, stderr)
	}
}

// TestProgressKeepsCapabilities: put's counting wrapper keeps every
// optional capability of the backend it wraps (a create-only put, a
// conditional delete of an expired leftover, ...) and claims none more.
func TestProgressKeepsCapabilities(t *testing.T) {
	a := newApp(strings.NewReader(""), io.Discard, io.Discard)
	a.terminal, a.width = true, func() int { return 100 }
	wrap := a.newProgress("read", "big", 1<<30).counting()
	if wrap == nil {
		t.Fatal("no counting wrapper for a bar")
	}
	files, err := filestash.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []driver.Driver{files, memstash.New(), struct{ driver.Driver }{files}} {
		if got, want := stashtest.Capabilities(wrap(d)), stashtest.Capabilities(d); got != want {
			t.Errorf("%T: wrapped has capabilities %q, want %q", d, got, want)
		}
	}
}
