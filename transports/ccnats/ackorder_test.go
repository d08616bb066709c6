package ccnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// With DeleteAfterAck, a rehydrated JetStream message's Ack deletes its
// stash only once the server has confirmed the ack. jetstream's Ack only
// queues the ack on the connection and returns: while the server is away,
// or before the client flushes, it returns nil with nothing recorded. A
// consumer that stops then (here: its connection is closed before it could
// reconnect) leaves the message unacknowledged, JetStream redelivers it,
// and a stash deleted at that Ack is gone for the redelivery.
func TestJetStreamAckDeletesOnlyOnceConfirmed(t *testing.T) {
	srv := natstest.Start(t)
	var counters claimcheck.Counters
	cc, eng := newChecker(t, claimcheck.DeleteAfterAck(), claimcheck.WithObserver(&counters))
	nc := srv.Connect(t)
	raw, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	js, err := ccnats.NewJetStream(raw, cc)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, js, "ACKORDER", "ackorder.>")
	cons := newConsumerAckWait(t, s, "worker", time.Second)
	body := payload(1<<20, 7)
	ack, err := js.Publish(ctxT(t), "ackorder.big", body)
	if err != nil {
		t.Fatal(err)
	}

	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	it = ccnats.Messages(cc, it, ccnats.WithTimeout(500*time.Millisecond))
	m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	it.Stop()
	if !equalBody(t, m.Data(), body) {
		t.FailNow()
	}
	md, err := m.Metadata()
	if err != nil || md.Sequence.Stream != ack.Sequence {
		t.Fatalf("metadata %+v, %v", md, err)
	}

	// The server goes away; the client notices and buffers what it sends.
	srv.Shutdown()
	for deadline := time.Now().Add(10 * time.Second); nc.Status() == nats.CONNECTED; {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice the server was gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.Ack(); err == nil {
		t.Error("Ack returned nil while the server could not have recorded it")
	}
	if s := counters.Snapshot(); s.Deleted != 0 {
		t.Errorf("%d stashes deleted for an ack the server never confirmed", s.Deleted)
	}
	nc.Close() // the consumer stops before its queued ack is ever sent

	// JetStream redelivers the message; its stash must still be there.
	srv.Restart(t)
	raw2 := srv.JetStream(t)
	cons2, err := raw2.Consumer(ctxT(t), "ACKORDER", "worker")
	if err != nil {
		t.Fatal(err)
	}
	it2, err := cons2.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it2.Stop()
	var m2 jetstream.Msg
	for deadline := time.Now().Add(10 * time.Second); m2 == nil; {
		r, err := it2.Next(jetstream.NextMaxWait(time.Until(deadline)))
		if err != nil {
			s := counters.Snapshot()
			t.Fatalf("no redelivery could be rehydrated: %v (%d rehydrate failures, %d stashes deleted)", err, s.RehydrateFailures, s.Deleted)
		}
		if m2, err = ccnats.Rehydrate(ctxT(t), cc, r); err != nil {
			t.Logf("redelivery not rehydrated: %v", err)
		}
	}
	if !equalBody(t, m2.Data(), body) {
		t.FailNow()
	}
	if err := m2.Ack(); err != nil {
		t.Fatal(err)
	}
	// This ack was confirmed: the stash goes.
	if s := counters.Snapshot(); s.Deleted != 1 || s.DeleteFailures != 0 {
		t.Errorf("after a confirmed ack: %d deleted, %d delete failures; want 1, 0", s.Deleted, s.DeleteFailures)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := eng.Stat(ctx, addressOf(t, m2)); !errors.Is(err, stash.ErrNotFound) {
		t.Errorf("stash still there after a confirmed ack: %v, %v", got, err)
	}
}

// addressOf is the stash address the received message m arrived with.
func addressOf(t testing.TB, m jetstream.Msg) string {
	t.Helper()
	u, ok := m.(interface{ Unwrap() jetstream.Msg })
	if !ok {
		t.Fatalf("%T is not a rehydrated view", m)
	}
	return string(u.Unwrap().Data())
}
