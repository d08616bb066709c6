package ccnats_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// A reference whose contract headers a hop canonicalised (nats.go before
// v1.19 did on Header.Set, an HTTP bridge does: Claimstash-Version,
// Claimstash-Size) is still rehydrated, by MsgHandler and by a wrapped
// connection's subscription, never handed to the handler with the
// address as its payload; the canonical names are gone from what the
// handler sees.
func TestCanonicalisedContractHeaders(t *testing.T) {
	srv := natstest.Start(t)
	raw := srv.Connect(t)
	cc, e := newChecker(t)
	body := payload(300<<10, 7)
	s, err := e.Create(ctxT(t), "canon", body, stash.NoInline())
	if err != nil {
		t.Fatal(err)
	}
	ref := func(subj string) *nats.Msg {
		m := &nats.Msg{Subject: subj, Data: []byte(s.Address.String()), Header: nats.Header{
			"Claimstash-Version": {claimcheck.ContractVersion},
			"Claimstash-Size":    {strconv.Itoa(len(body))},
			"App":                {"v"},
		}}
		return m
	}
	got := make(chan *nats.Msg, 2)
	sub, err := raw.Subscribe("canon.handler", ccnats.MsgHandler(cc, func(m *nats.Msg) { got <- m }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	wc, err := ccnats.WrapConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	sub2, err := wc.Subscribe("canon.wrapped", func(m *nats.Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub2.Unsubscribe() }()
	if err := wc.Conn.Flush(); err != nil { // the server has the subscription before raw publishes
		t.Fatal(err)
	}
	for _, subj := range []string{"canon.handler", "canon.wrapped"} {
		if err := raw.PublishMsg(ref(subj)); err != nil {
			t.Fatal(err)
		}
		m := recv(t, got, 10*time.Second)
		if !equalBody(t, m.Data, body) {
			t.Fatalf("%s: the handler got %d bytes, not the payload", subj, len(m.Data))
		}
		if len(m.Header) != 1 || m.Header.Get("App") != "v" {
			t.Errorf("%s: headers %v, want only App", subj, m.Header)
		}
	}
}
