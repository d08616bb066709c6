package ccnats_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

const smallMaxPayload = 64 << 10

// limitsServer is a real nats-server with a max_payload of 64 KiB, a
// publishing connection on it wrapped with cc, and a rehydrating
// subscription on "lim.>".
func limitsServer(t *testing.T, cc *claimcheck.Checker) (*ccnats.Conn, <-chan *nats.Msg) {
	t.Helper()
	srv := natstest.Start(t, func(o *server.Options) { o.MaxPayload = smallMaxPayload })
	pubNC, subNC := srv.Connect(t), srv.Connect(t)
	if mp := pubNC.MaxPayload(); mp != smallMaxPayload {
		t.Fatalf("server max_payload = %d, want %d", mp, smallMaxPayload)
	}
	conn, err := ccnats.NewConn(pubNC, cc)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, 4)
	sub, err := subNC.Subscribe("lim.>", ccnats.MsgHandler(cc, func(m *nats.Msg) { got <- m }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := subNC.Flush(); err != nil {
		t.Fatal(err)
	}
	return conn, got
}

// manyHeaders returns n short headers: the framing nats.go adds to each
// line (": " and CRLF, 4 bytes) is larger than the key and value together,
// 400 of them add 1,612 bytes of framing, more than the default margin.
func manyHeaders(n int) nats.Header {
	h := nats.Header{}
	for i := range n {
		h.Set(fmt.Sprintf("h%03d", i), "v")
	}
	return h
}

// With the threshold at the server's max_payload and no margin, a message
// whose body plus headers is one byte under, exactly at and one byte over
// the threshold is sent as it is, sent as it is (and fits the server to the
// byte), and claim-checked, in that order: the headers' size counts what
// nats.go puts on the wire, framing included.
func TestMaxPayloadBoundaryWithManyHeaders(t *testing.T) {
	var offloads addresses
	cc, _ := newChecker(t, claimcheck.WithThreshold(smallMaxPayload), claimcheck.WithMargin(0), claimcheck.WithObserver(&offloads))
	conn, got := limitsServer(t, cc)
	h := manyHeaders(400)
	wire := ccnats.Header(h).WireSize()
	for _, delta := range []int{-1, 0, 1} {
		t.Run(fmt.Sprintf("%+d", delta), func(t *testing.T) {
			before := len(offloads.get())
			body := payload(smallMaxPayload-wire+delta, uint64(delta+10))
			if n := cc.Size(body, ccnats.Header(h)); n != smallMaxPayload+delta {
				t.Fatalf("counted size = %d, want %d", n, smallMaxPayload+delta)
			}
			m := &nats.Msg{Subject: "lim.many", Header: h, Data: body}
			if err := conn.PublishMsg(ctxT(t), m); err != nil {
				t.Fatalf("publish of %d bytes and %d of headers: %v", len(body), wire, err)
			}
			r := recv(t, got, 10*time.Second)
			equalBody(t, r.Data, body)
			if len(r.Header) != len(h) {
				t.Errorf("received %d headers, want %d", len(r.Header), len(h))
			}
			offloaded := len(offloads.get()) > before
			if want := delta > 0; offloaded != want {
				t.Errorf("offloaded = %v, want %v", offloaded, want)
			}
		})
	}
}

// With the default threshold (256 KiB) on a server whose max_payload is
// 64 KiB, a message between the two is not claim-checked and the server
// cannot take it: the caller gets nats.ErrMaxPayload, nothing is sent
// silently short. A message over the threshold goes through.
func TestSmallMaxPayloadDefaultThreshold(t *testing.T) {
	cc, _ := newChecker(t)
	conn, got := limitsServer(t, cc)
	if err := conn.Publish(ctxT(t), "lim.mid", payload(100<<10, 1)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish of 100 KiB: err = %v, want nats.ErrMaxPayload", err)
	}
	big := payload(300<<10, 2)
	if err := conn.Publish(ctxT(t), "lim.big", big); err != nil {
		t.Fatal(err)
	}
	equalBody(t, recv(t, got, 10*time.Second).Data, big)
	select {
	case m := <-got:
		t.Fatalf("the refused message arrived: %d bytes on %s", len(m.Data), m.Subject)
	case <-time.After(100 * time.Millisecond):
	}
}

// A reference whose user headers alone are over max_payload cannot be
// sent: the caller gets nats.ErrMaxPayload (the stash is left to its TTL).
func TestReferenceOverMaxPayloadIsAnError(t *testing.T) {
	cc, _ := newChecker(t)
	conn, got := limitsServer(t, cc)
	m := &nats.Msg{Subject: "lim.ref", Header: nats.Header{"big": {strings.Repeat("x", smallMaxPayload)}}, Data: payload(300<<10, 3)}
	if err := conn.PublishMsg(ctxT(t), m); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish: err = %v, want nats.ErrMaxPayload", err)
	}
	select {
	case m := <-got:
		t.Fatalf("a message arrived: %d bytes", len(m.Data))
	case <-time.After(100 * time.Millisecond):
	}
}
