package main

import (
	"bytes"
	"io"
	"net/http"
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
