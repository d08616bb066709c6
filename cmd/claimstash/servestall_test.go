package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// stalledPut sends a PUT of 1 MiB that stops after 1 KiB and returns the
// status serve answers it with and how long that took (0 and the time
// waited when no answer came within wait).
func stalledPut(t *testing.T, base string, wait time.Duration) (int, time.Duration) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(wait)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /v1/objects/uc/_/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("x", 1024))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, time.Since(start)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// TestServeStallTimeout: serve gives up on an upload that stalls after
// --stall-timeout (408), and with --stall-timeout 0 it waits.
func TestServeStallTimeout(t *testing.T) {
	be, _ := backend(t)
	base, stop := startServe(t, be, "--no-auth", "--stall-timeout", "300ms")
	code, took := stalledPut(t, base, 10*time.Second)
	if code != http.StatusRequestTimeout || took < 300*time.Millisecond {
		t.Errorf("a stalled upload with --stall-timeout 300ms: status %d after %s, want 408 after 300ms", code, took)
	}
	if code, errs := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errs)
	}
	base, stop = startServe(t, be, "--no-auth", "--stall-timeout", "0")
	defer stop()
	if code, _ := stalledPut(t, base, 1500*time.Millisecond); code != 0 {
		t.Errorf("a stalled upload with --stall-timeout 0 was answered %d; want it waited for", code)
	}
}

func TestServeStallTimeoutRefused(t *testing.T) {
	be, _ := backend(t)
	_, errs, code := cli(t, nil, "serve", be, "--no-auth", "--listen", "127.0.0.1:0", "--stall-timeout", "-1s")
	if code != exitUsage || !strings.Contains(errs, "--stall-timeout") {
		t.Errorf("--stall-timeout -1s: exit %d, %s", code, errs)
	}
}
