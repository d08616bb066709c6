package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A download in flight when SIGTERM arrives is served to its end, verified,
// within --grace: serve stops accepting, not serving. Over the real binary
// and a real socket, with the client holding the response back so that the
// server is still writing when the signal comes.
func TestServeSIGTERMFinishesInFlight(t *testing.T) {
	bin := buildCLI(t)
	be, _ := backend(t)
	keys := "--link-keys=" + linkKeys()
	data := randomBytes(48 << 20) // well over what loopback socket buffers hold
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--quiet", "--no-inline")
	s := startServeBin(t, bin, be, keys, "--no-api", "--drain", "0", "--grace", "30s")
	link := mustCLI(t, nil, "share", be, keys, "--share-url", s.base()+"/", addr)

	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", link, resp.Status)
	}
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(time.Second) // the signal has been handled: the listener is closing
	select {
	case <-s.exited:
		t.Fatalf("serve exited (%d) with a download in flight: %s", s.code, s.stderr)
	default:
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the download in flight was cut: %v after %d bytes", err, len(head)+len(rest))
	}
	if got := append(head, rest...); !bytes.Equal(got, data) {
		t.Fatalf("the download in flight got %d bytes, not the %d stored", len(got), len(data))
	}
	if code := s.wait(t); code != 0 {
		t.Errorf("serve exit %d after a graceful shutdown: %s", code, s.stderr)
	}
}

// get into a pipe whose reader goes away (get ... | head -c1) ends by
// SIGPIPE, status 141 in a shell, as "help exit-codes" says: never 0 for
// output cut short.
func TestGetIntoClosedPipe(t *testing.T) {
	bin := buildCLI(t)
	be, _ := backend(t)
	addr := mustCLI(t, bytes.NewReader(randomBytes(8<<20)), "put", be, "--quiet", "--no-inline")
	for _, extra := range [][]string{nil, {"--verify-buffer", "1KiB"}} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{"get", be, "--quiet", addr}, extra...)...)
		cmd.Env = cleanEnv()
		cmd.Stdout = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		one := make([]byte, 1)
		if _, err := io.ReadFull(r, one); err != nil {
			t.Fatal(err)
		}
		r.Close()
		_ = cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
			t.Errorf("get %v | head -c1: %v; want killed by SIGPIPE (141)", extra, cmd.ProcessState)
		}
	}
}
