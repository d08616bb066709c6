package links_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
)

// stalling serves the first half of data and then sends nothing until the
// client goes away or release is closed, as a slowloris or a dead peer
// behind a proxy does.
func stalling(t *testing.T, data []byte) (url string, release chan struct{}) {
	release = make(chan struct{})
	srv := liar(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	return srv.URL, release
}

// A share link whose server sends its headers and then nothing fails
// after the stall timeout, a transient error (the message comes back),
// instead of holding the handler until its context ends.
func TestFetcherStalledBody(t *testing.T) {
	data := payload(64 << 10)
	base, _ := stalling(t, data)
	link := digestLink(base, data)
	e, err := stash.New(stash.WithLinkFetcher(fetcher(t, nil, nil, links.TrustOrigins(base), links.WithStallTimeout(300*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	start := time.Now()
	got, err := e.Retrieve(ctx, link)
	took := time.Since(start)
	switch {
	case err == nil || got != nil:
		t.Fatalf("Retrieve of a stalled body: %v, %v; want an error", got, err)
	case ctx.Err() != nil || took > 10*time.Second:
		t.Fatalf("Retrieve of a stalled body took %s, until its context ended (%v)", took, err)
	case errors.Is(err, stash.ErrIntegrity):
		t.Errorf("Retrieve of a stalled body: %v; a stall is transient, not ErrIntegrity", err)
	}
	checkReadable(t, err)

	r, err := e.Open(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r)
	if err == nil || ctx.Err() != nil || errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Open and read of a stalled body: %d bytes, %v; want a transient error before the context ends", n, err)
	}
}

// The stall timeout bounds each wait, not the whole download: a server
// that sends a little at a time, each part within the timeout, is read to
// the end.
func TestFetcherSlowButSteadyBody(t *testing.T) {
	data := payload(16 << 10)
	srv := liar(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		for i := 0; i < len(data); i += 2 << 10 {
			_, _ = w.Write(data[i : i+2<<10])
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	e, err := stash.New(stash.WithLinkFetcher(fetcher(t, nil, nil, links.TrustOrigins(srv.URL), links.WithStallTimeout(500*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Retrieve(context.Background(), digestLink(srv.URL, data))
	if err != nil || len(got.Data) != len(data) {
		t.Fatalf("Retrieve of a slow, steady body (800 ms in all, 100 ms a part): %v", err)
	}
}
