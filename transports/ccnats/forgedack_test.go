package ccnats_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// On a core subscription the reply subject is whatever the publisher
// wrote, and the wrapper settles a message that has a JetStream ack subject
// on it as JetStream (Ack, Term or Nak, as the checker decides). A forged
// claim-checked message carrying another consumer's ack subject would then
// have the wrapper terminate (here, claimcheck.DiscardAfter(1)) a message
// it never received. The server refuses client publishes whose reply is a
// JetStream ack subject, so the forgery never arrives: this test holds the
// end-to-end property, the other consumer's message is still redelivered.
func TestForgedAckSubjectOnCoreSubscription(t *testing.T) {
	srv := natstest.Start(t)
	raw := srv.JetStream(t)
	s := newStream(t, raw, "VICTIM", "victim.>")
	cons := newConsumerAckWait(t, s, "worker", time.Second)
	if _, err := raw.Publish(ctxT(t), "victim.order", []byte("an order")); err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	victim := <-b.Messages()
	if victim == nil || !strings.HasPrefix(victim.Reply(), "$JS.ACK.") {
		t.Fatalf("no pending message to forge the ack subject of: %v", b.Error())
	}

	cc, _ := newChecker(t, claimcheck.DiscardAfter(1))
	wc, err := ccnats.WrapConn(srv.Connect(t), cc, ccnats.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan *nats.Msg, 1)
	sub, err := wc.Subscribe("svc", func(m *nats.Msg) { handled <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := wc.Flush(); err != nil {
		t.Fatal(err)
	}
	// A reference to a stash that does not exist, in the checker's own store.
	forged := nats.NewMsg("svc")
	forged.Reply = victim.Reply()
	forged.Header.Set(claimcheck.HeaderVersion, claimcheck.ContractVersion)
	forged.Header.Set(claimcheck.HeaderSize, "8")
	forged.Data = []byte("mem://default/x." + strings.Repeat("0", 64))
	attacker := srv.Connect(t)
	_ = attacker.PublishMsg(forged) // refused by the server, asynchronously
	_ = attacker.Flush()
	select {
	case m := <-handled:
		t.Fatalf("the forged reference reached the handler: %q", m.Data)
	case <-time.After(500 * time.Millisecond):
	}

	// The victim's message was never acknowledged: JetStream redelivers it.
	b, err = cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := <-b.Messages()
	if m == nil {
		t.Fatalf("the other consumer's message was settled by a forged message: never redelivered (%v)", b.Error())
	}
	if string(m.Data()) != "an order" {
		t.Fatalf("redelivered %q", m.Data())
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
}
