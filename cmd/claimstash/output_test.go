package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestGetIntoPipe: get -o naming a named pipe (as /dev/null or /dev/stdout
// would be, a file that is not a regular one) writes into it, verified
// first; it never renames a file over it, which would replace a device
// node for every other program on the machine.
func TestGetIntoPipe(t *testing.T) {
	be, dir := backend(t)
	data := randomBytes(300 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "piped", "-")

	read := func(fifo string) <-chan []byte {
		got := make(chan []byte, 1)
		go func() {
			f, err := os.Open(fifo) // blocks until get opens it for writing
			if err != nil {
				got <- nil
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			got <- b
		}()
		return got
	}
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	got := read(fifo)
	mustCLI(t, nil, "get", be, addr, "-o", fifo)
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Errorf("the pipe's reader got %d bytes, want %d", len(b), len(data))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("nothing was written into the pipe")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v, %v", fi.Mode(), err)
	}

	// A stash that fails its check writes nothing into the pipe.
	corrupt(t, dir, addr)
	got = read(fifo)
	if _, errs, code := cli(t, nil, "get", be, addr, "-o", fifo); code != exitIntegrity {
		t.Errorf("get of a corrupt stash into a pipe: exit %d, want %d; %s", code, exitIntegrity, errs)
	}
	select {
	case b := <-got:
		t.Errorf("a corrupt stash opened the pipe (%d bytes written)", len(b))
	case <-time.After(200 * time.Millisecond):
		// get opens the pipe only once the stash is verified; unblock the reader.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		if b := <-got; len(b) != 0 {
			t.Errorf("a corrupt stash wrote %d bytes into the pipe", len(b))
		}
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v, %v", fi.Mode(), err)
	}
}

// TestGetThroughSymlink: get -o naming a symbolic link replaces the file the
// link points to and keeps the link.
func TestGetThroughSymlink(t *testing.T) {
	be, _ := backend(t)
	data := randomBytes(70 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "linked", "-")
	d := t.TempDir()
	target, link := filepath.Join(d, "target.bin"), filepath.Join(d, "link.bin")
	if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.bin", link); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, nil, "get", be, addr, "-o", link)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v, %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(target); err != nil || !bytes.Equal(b, data) {
		t.Errorf("the link's target holds %d bytes (%v), want %d", len(b), err, len(data))
	}
}
