package service_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/service"
)

const stall = 300 * time.Millisecond

// openWatched is open with a stall timeout, and a channel that receives
// each object request's method once the server is done with it.
func openWatched(t *testing.T) (*httptest.Server, <-chan string) {
	t.Helper()
	s, err := service.New(newStore(t), service.WithoutAuth(), service.WithStallTimeout(stall))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 16)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- r.Method }()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts, done
}

func finished(t *testing.T, done <-chan string, method string, within time.Duration) {
	t.Helper()
	select {
	case m := <-done:
		if m != method {
			t.Fatalf("the server finished a %s, want the %s", m, method)
		}
	case <-time.After(within):
		t.Fatalf("the server still holds the %s after %s", method, within)
	}
}

// TestStalledUploadIsCutOff: a PUT whose body stops halfway is answered
// 408 once the stall timeout passes, and stores nothing.
func TestStalledUploadIsCutOff(t *testing.T) {
	ts, done := openWatched(t)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(20 * stall)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fmt.Fprintf(c, "PUT /v1/objects/uc/_/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat("x", 1024))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled upload: %d, want 408", resp.StatusCode)
	}
	if waited := time.Since(start); waited < stall || waited > 10*stall {
		t.Errorf("answered after %s, want about %s", waited, stall)
	}
	finished(t, done, http.MethodPut, 10*stall)
	if r := do(t, http.MethodGet, ts.URL+"/v1/objects/uc/_/stalled", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("after the stalled upload, GET: %d, want 404", r.StatusCode)
	}
}

// TestSlowUploadIsNotCutOff: a body that keeps bringing bytes, each
// within the stall timeout, is stored whole however long it takes.
func TestSlowUploadIsNotCutOff(t *testing.T) {
	ts, _ := openWatched(t)
	pr, pw := io.Pipe()
	go func() {
		for range 6 {
			time.Sleep(stall / 3)
			if _, err := pw.Write(bytes.Repeat([]byte("y"), 1000)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPut, ts.URL+"/v1/objects/uc/_/slow", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 6000
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slow upload: %d, want 200", resp.StatusCode)
	}
	r := do(t, http.MethodGet, ts.URL+"/v1/objects/uc/_/slow", nil)
	defer r.Body.Close()
	if b, _ := io.ReadAll(r.Body); len(b) != 6000 {
		t.Errorf("the slow upload reads back as %d bytes, want 6000", len(b))
	}
}

// TestStalledReaderIsCutOff: a GET whose client reads nothing ends on the
// server once the stall timeout passes, instead of holding its file and
// goroutine for as long as the connection stays open.
func TestStalledReaderIsCutOff(t *testing.T) {
	ts, done := openWatched(t)
	// More than loopback's socket buffers hold with the client's kept small.
	big := bytes.Repeat([]byte("z"), 64<<20)
	if r := do(t, http.MethodPut, ts.URL+"/v1/objects/uc/_/big", bytes.NewReader(big)); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
	finished(t, done, http.MethodPut, time.Minute)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /v1/objects/uc/_/big HTTP/1.1\r\nHost: x\r\n\r\n")
	finished(t, done, http.MethodGet, 40*stall)
}

// TestStallDeadlinesDoNotOutliveTheRequest: a connection kept alive past
// the stall timeout after a PUT and after a GET serves its next requests,
// on a route the guard wraps and on one it does not (the deadlines of one
// request are not left on the connection for the next).
func TestStallDeadlinesDoNotOutliveTheRequest(t *testing.T) {
	ts, _ := openWatched(t)
	client := ts.Client()
	body := bytes.Repeat([]byte("k"), 3<<20)
	for i := range 3 {
		req, err := http.NewRequest(http.MethodPut, ts.URL+"/v1/objects/uc/_/kept", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("PUT %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT %d: %d", i, resp.StatusCode)
		}
		time.Sleep(2 * stall)
		resp, err = client.Get(ts.URL + "/v1/objects/uc/_/kept")
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET %d: %d bytes back of %d (%v)", i, len(got), len(body), err)
		}
		time.Sleep(2 * stall)
		// A route the guard does not wrap writes under whatever deadline
		// the connection still has.
		resp, err = client.Get(ts.URL + "/health")
		if err != nil {
			t.Fatalf("health %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("health %d: %d", i, resp.StatusCode)
		}
	}
}
