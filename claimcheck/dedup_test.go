package claimcheck_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Issue 11, item 3: with DeleteAfterAck, two messages with the same body
// shared one content-addressed stash, and acking the first deleted the
// second's. A backlog of 30 messages over 3 bodies, acked one by one as a
// single consumer would, must all rehydrate.
func TestDeleteAfterAckWithDuplicateBodies(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, memstash.New())
	c, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), claimcheck.DeleteAfterAck())
	if err != nil {
		t.Fatal(err)
	}
	bodies := make([][]byte, 3)
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte(fmt.Sprintf("body %d;", i)), 500)
	}
	type wire struct {
		body []byte
		h    claimcheck.MapHeaders
	}
	backlog := make([]wire, 30)
	addrs := map[string]bool{}
	for i := range backlog {
		h := claimcheck.MapHeaders{}
		out, addr, err := c.Offload(ctx, "orders", bodies[i%3], h)
		if err != nil || addr == "" {
			t.Fatalf("Offload %d: %q, %v", i, addr, err)
		}
		if addrs[addr] {
			t.Errorf("message %d shares stash %s with an earlier message", i, addr)
		}
		addrs[addr] = true
		backlog[i] = wire{out, h}
	}
	for i, m := range backlog {
		got, addr, err := c.Rehydrate(ctx, "orders", m.body, m.h)
		if err != nil {
			t.Fatalf("message %d of the backlog: %v (lost)", i, err)
		}
		if !bytes.Equal(got, bodies[i%3]) {
			t.Fatalf("message %d: wrong body", i)
		}
		if err := c.Acked(ctx, addr); err != nil {
			t.Fatalf("Acked %d: %v", i, err)
		}
		if _, err := e.Stat(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("message %d: its stash outlived the ack: %v", i, err)
		}
	}

	// Without DeleteAfterAck nothing is deleted, and duplicates still
	// share one stash.
	keep, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always))
	if err != nil {
		t.Fatal(err)
	}
	_, a1, err1 := keep.Offload(ctx, "orders", bodies[0], claimcheck.MapHeaders{})
	_, a2, err2 := keep.Offload(ctx, "orders", bodies[0], claimcheck.MapHeaders{})
	if err1 != nil || err2 != nil || a1 != a2 {
		t.Errorf("without DeleteAfterAck, duplicate bodies gave %s and %s (%v, %v), want one shared stash", a1, a2, err1, err2)
	}
}

// The unique names stay valid stash names whatever the namer returns.
func TestDeleteAfterAckLongNames(t *testing.T) {
	ctx := context.Background()
	long := string(bytes.Repeat([]byte("n"), stash.MaxNameLength))
	c, err := claimcheck.New(newEngine(t, memstash.New()), claimcheck.WithMode(claimcheck.Always), claimcheck.DeleteAfterAck(),
		claimcheck.WithNamer(func(string, claimcheck.Headers) string { return long }))
	if err != nil {
		t.Fatal(err)
	}
	if _, addr, err := c.Offload(ctx, "t", []byte("payload"), claimcheck.MapHeaders{}); err != nil || addr == "" {
		t.Fatalf("Offload with a name of the maximum length: %q, %v", addr, err)
	}
}
