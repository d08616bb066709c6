package objectstash_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// watchedReader is an endless payload that records a Read once its owner
// says Put has returned.
type watchedReader struct {
	returned, readAfter atomic.Bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.returned.Load() {
		w.readAfter.Store(true)
	}
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// TestPutLetsGoOfTheBody: a server that answers a create-only PUT with 412
// before it has read the body (as claimstash's does) leaves net/http still
// writing the request body after the response is in. Put must not return
// until the transport has let go of it: a caller may reuse or change the
// bytes behind the reader the moment Put returns.
func TestPutLetsGoOfTheBody(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-claimstash-conditional-put", "if-none-match")
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusPreconditionFailed) // the body is never read
	}))
	defer ts.Close()
	s, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	key := "taken." + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	// A first response tells the backend the server honours If-None-Match.
	if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
	const size = 64 << 20
	for range 3 {
		r := &watchedReader{}
		err := s.Put(ctx, "ns", key, r, size, &driver.Attributes{Size: size, StoredSize: size})
		r.returned.Store(true)
		if !errors.Is(err, driver.ErrExists) {
			t.Fatalf("Put of a taken key: %v, want ErrExists", err)
		}
		time.Sleep(50 * time.Millisecond)
		if r.readAfter.Load() {
			t.Fatal("the payload was read after Put returned")
		}
	}
}

// TestPutRefusedBeforeSendingReturns: a Put refused before its request is
// sent (an encoding objectstore cannot carry) returns at once: nothing
// holds the body, so there is nothing to wait for.
func TestPutRefusedBeforeSendingReturns(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer ts.Close()
	s, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		done <- s.Put(context.Background(), "ns", "brotli.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			&watchedReader{}, 1<<20, &driver.Attributes{Size: 1 << 20, StoredSize: 1 << 20, Encoding: "br"})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, driver.ErrUnsupported) {
			t.Errorf("Put with encoding br: %v, want ErrUnsupported", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Put refused before sending did not return")
	}
}
