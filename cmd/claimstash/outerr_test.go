package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fullWriter is stdout on a full disk: every write fails, as /dev/full's do.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// A command whose output never reached stdout did not do its job: put's
// address, keygen's key, stat's attributes, the help itself lost on a full
// disk must not exit 0, and the failure is not a usage error.
func TestOutputToFullDisk(t *testing.T) {
	be, _ := backend(t)
	src := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(src, randomBytes(4096), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := mustCLI(t, nil, "put", be, "--no-inline", src)
	for _, args := range [][]string{
		{"put", be, "--quiet", "--no-inline", src},
		{"put", be, "--quiet", src},
		{"put", be, "--quiet", "--json", src},
		{"stat", be, addr},
		{"ls", be},
		{"keygen"},
		{"keygen", "--json"},
		{"get", be, "--quiet", addr},
		{"--help"},
		{"put", "--help"},
		{"--version"},
		{"help", "exit-codes"},
		{"completion", "bash"},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), fullWriter{}, &errb)
		if code != exitFailure {
			t.Errorf("%s > /dev/full: exit %d; want %d\nstderr: %s", strings.Join(args, " "), code, exitFailure, errb.String())
		}
		if !strings.Contains(errb.String(), "no space left on device") {
			t.Errorf("%s > /dev/full: stderr does not say why: %q", strings.Join(args, " "), errb.String())
		}
		if strings.Contains(errb.String(), "--help' for usage") {
			t.Errorf("%s > /dev/full: reported as a usage error: %q", strings.Join(args, " "), errb.String())
		}
	}
}

// The same through the real /dev/full, as a shell redirect gives it.
func TestOutputToDevFull(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full on this system")
	}
	defer f.Close()
	var errb bytes.Buffer
	code := run(context.Background(), []string{"keygen"}, strings.NewReader(""), f, &errb)
	if code != exitFailure || !strings.Contains(errb.String(), "no space left") {
		t.Fatalf("keygen > /dev/full: exit %d, stderr %q; want exit %d and the reason", code, errb.String(), exitFailure)
	}
}
