package claimcheck_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

// An Event never carries a share link's query (its signature): observers
// are telemetry, and telemetry is logged and exported. Events show a link
// as scheme://host/path?… .
func TestEventsKeepLinkSignaturesOut(t *testing.T) {
	ctx := context.Background()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	signer, linkOpts, err := links.EngineOptions([]links.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}, srv.URL+"/share/")
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackend(memstash.New()), stash.WithInlineMax(-1)}, linkOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h = links.NewHandler(e, signer)
	data := bytes.Repeat([]byte("payload "), 1000)
	s, err := e.Create(ctx, "doc", data)
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, s.Address.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	var seen []claimcheck.Event
	rec := claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ev)
	})
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := claimcheck.New(e, claimcheck.WithObserver(claimcheck.Observers(rec, claimcheck.SlogObserver(logger))))
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(link, "sig=", "sig=A", 1)
	for _, l := range []string{link, tampered} {
		hd := claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: strconv.Itoa(len(data))}
		_, _, _ = c.Rehydrate(ctx, "orders", []byte(l), hd)
	}
	_, query, _ := strings.Cut(link, "?")
	want := strings.SplitN(link, "?", 2)[0] + "?…"
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("%d events, want 2", len(seen))
	}
	for _, ev := range seen {
		if ev.Address != want {
			t.Errorf("event %s (err %v): address %q, want %q", ev.Op, ev.Err, ev.Address, want)
		}
	}
	if out := logs.String(); strings.Contains(out, query) || strings.Contains(out, "sig=") {
		t.Errorf("the log carries the link's signature:\n%s", out)
	}
}

// A message whose reference is a share link is rehydrated from the
// sharer's store; with DeleteAfterAck, its ack deletes nothing (the stash
// is the sharer's, and a link is often handed to several consumers) and
// reports no failed delete for every message.
func TestAckedLeavesLinksAlone(t *testing.T) {
	ctx := context.Background()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	signer, linkOpts, err := links.EngineOptions([]links.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}, srv.URL+"/share/")
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackend(memstash.New()), stash.WithInlineMax(-1)}, linkOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h = links.NewHandler(e, signer)
	data := bytes.Repeat([]byte("payload "), 1000)
	s, err := e.Create(ctx, "doc", data)
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, s.Address.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var counters claimcheck.Counters
	c, err := claimcheck.New(e, claimcheck.DeleteAfterAck(), claimcheck.WithObserver(&counters))
	if err != nil {
		t.Fatal(err)
	}
	hd := claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: strconv.Itoa(len(data))}
	out, addr, err := c.Rehydrate(ctx, "orders", []byte(link), hd)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("rehydrate the link: %v", err)
	}
	if err := c.Acked(ctx, addr); err != nil {
		t.Errorf("Acked: %v", err)
	}
	if snap := counters.Snapshot(); snap.DeleteFailures != 0 || snap.Deleted != 0 {
		t.Errorf("counters after the ack of a link: %+v", snap)
	}
	if _, err := e.Retrieve(ctx, s.Address.String()); err != nil {
		t.Errorf("the shared stash after the ack: %v", err)
	}
}
