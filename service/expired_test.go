package service_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// TestCreateOverExpiredLeftover: an object past its expiry that nothing has
// swept yet is gone for every reader (404), so it is gone for a
// create-only PUT too. Creating the same content again through the backend
// must store it afresh: a Create that returned while the server kept only
// the expired leftover would publish a reference nobody can read.
func TestCreateOverExpiredLeftover(t *testing.T) {
	ts, clk := open(t)
	e := engineOver(t, ts.URL, stash.WithClock(clk.now))
	ctx := context.Background()
	payload := bytes.Repeat([]byte("leftover "), 1000)
	first, err := e.Create(ctx, "expiry", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Hour)
	if _, err := e.Retrieve(ctx, first.String()); !errors.Is(err, stash.ErrNotFound) && !errors.Is(err, stash.ErrExpired) {
		t.Fatalf("Retrieve after expiry: %v, want not found or expired", err)
	}
	again, err := e.Create(ctx, "expiry", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatalf("Create over the expired leftover: %v", err)
	}
	got, err := e.Retrieve(ctx, again.String())
	if err != nil {
		t.Fatalf("Retrieve of the content created again: %v", err)
	}
	if !bytes.Equal(got.Data, payload) {
		t.Fatal("Retrieve: not the payload")
	}
	// And by hand: a create-only PUT over an expired object creates.
	u := ts.URL + "/v1/objects/testing/_/k"
	wantStatus(t, do(t, "PUT", u, bytes.NewReader([]byte("old")), "x-sn-expiration", "ttl:1 hours"), 200)
	clk.add(2 * time.Hour)
	wantStatus(t, do(t, "GET", u, nil), http.StatusNotFound)
	wantStatus(t, do(t, "PUT", u, bytes.NewReader([]byte("new")), "If-None-Match", "*"), 200)
	if got := readAll(t, do(t, "GET", u, nil)); got != "new" {
		t.Fatalf("GET after a create-only PUT over an expired object: %q, want %q", got, "new")
	}
}
