package ccnats_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// goneMsg is a claim-checked message whose stash does not exist.
func goneMsg(cc *claimcheck.Checker, subj string) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = []byte(cc.Engine().Schemes()[0] + "://" + cc.Engine().Namespace() + "/gone." + strings.Repeat("cd", 32))
	m.Header.Set(claimcheck.HeaderVersion, claimcheck.ContractVersion)
	m.Header.Set(claimcheck.HeaderSize, "1000")
	return m
}

// Requests and replies many times max_payload cross both ways, through the
// unchanged nats.go calls.
func TestWrappedConnRequestReply(t *testing.T) {
	srv := natstest.Start(t)
	cc, _ := newChecker(t)
	wc, err := ccnats.WrapConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	req, resp := payload(3<<20, 1), payload(5<<20, 2)
	sub, err := wc.Subscribe("svc", func(m *nats.Msg) {
		if equalBody(t, m.Data, req) {
			if err := wc.Publish(m.Reply, resp); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	reply, err := wc.Request("svc", req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	equalBody(t, reply.Data, resp)
	if _, ok := reply.Header[claimcheck.HeaderVersion]; ok {
		t.Error("the reply kept the contract header")
	}
	reply, err = wc.RequestWithContext(ctxT(t), "svc", req)
	if err != nil {
		t.Fatal(err)
	}
	equalBody(t, reply.Data, resp)
}

// NextMsg skips a message whose stash is gone, reports it, and returns the
// next one; Rehydrate does the same for a message read off the raw
// connection.
func TestWrappedConnSyncFailure(t *testing.T) {
	srv := natstest.Start(t)
	errs := make(chan error, 4)
	cc, _ := newChecker(t, failures(errs))
	wc, err := ccnats.WrapConn(srv.Connect(t), cc, ccnats.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	raw := srv.Connect(t)
	sub, err := wc.SubscribeSync("s")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	rawSub, err := raw.SubscribeSync("s")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rawSub.Unsubscribe() }()
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := raw.PublishMsg(goneMsg(cc, "s")); err != nil {
		t.Fatal(err)
	}
	big := payload(2<<20, 3)
	if err := wc.Publish("s", big); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	equalBody(t, m.Data, big)
	if err := recv(t, errs, 5*time.Second); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("failure %v, want stash.ErrNotFound", err)
	}

	// The same two messages, off the raw connection, through Rehydrate.
	m, err = rawSub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := wc.Rehydrate(ctxT(t), m); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Rehydrate of a gone stash: %v, want stash.ErrNotFound", err)
	}
	<-errs // the observer's view of the same failure
	if _, ok := m.Header[claimcheck.HeaderVersion]; !ok {
		t.Error("a failed Rehydrate changed the message")
	}
	m, err = rawSub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(m.Data, big) {
		t.Fatal("the raw subscription got the payload, not the address")
	}
	if err := wc.Rehydrate(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	equalBody(t, m.Data, big)
	select {
	case err := <-errs:
		t.Fatalf("a good message failed: %v", err)
	default:
	}
}

// With a failure handler on the checker, Rehydrate says ErrHandled.
func TestWrappedConnRehydrateRouted(t *testing.T) {
	srv := natstest.Start(t)
	routed := make(chan claimcheck.Failure, 1)
	cc, _ := newChecker(t, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
		routed <- f
		return nil
	}))
	wc, err := ccnats.WrapConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	m := goneMsg(cc, "r")
	if err := wc.Rehydrate(ctxT(t), m); !errors.Is(err, ccnats.ErrHandled) {
		t.Fatalf("Rehydrate: %v, want ErrHandled", err)
	}
	if f := recv(t, routed, time.Second); f.Message != m || !errors.Is(f.Err, stash.ErrNotFound) {
		t.Fatalf("failure %+v", f)
	}
}

func legacySetup(t *testing.T, opts ...claimcheck.Option) (*ccnats.JetStreamContext, nats.JetStreamContext, *claimcheck.Checker) {
	t.Helper()
	srv := natstest.Start(t)
	cc, _ := newChecker(t, opts...)
	wc, err := ccnats.WrapConn(srv.Connect(t), cc, ccnats.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	js, err := wc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := srv.Connect(t).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.AddStream(&nats.StreamConfig{Name: "L", Subjects: []string{"l.>"}, Storage: nats.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	return js, raw, cc
}

// A pulled message whose stash is gone is Nak'ed with the checker's retry
// delay and comes back; it never reaches the application.
func TestLegacyFetchNakAndRedeliver(t *testing.T) {
	errs := make(chan error, 8)
	js, raw, cc := legacySetup(t, claimcheck.WithRetryDelay(50*time.Millisecond), failures(errs))
	if _, err := raw.PublishMsg(goneMsg(cc, "l.a")); err != nil {
		t.Fatal(err)
	}
	sub, err := js.PullSubscribe("l.a", "d", nats.BindStream("L"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for delivery := 1; delivery <= 2; delivery++ {
		msgs, err := sub.Fetch(1, nats.MaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("delivery %d: %v", delivery, err)
		}
		if len(msgs) != 0 {
			t.Fatalf("delivery %d: %d messages reached the application", delivery, len(msgs))
		}
		if err := recv(t, errs, 2*time.Second); !errors.Is(err, stash.ErrNotFound) || errors.Is(err, ccnats.ErrTerminated) {
			t.Fatalf("delivery %d: error %v, want a Nak'ed stash.ErrNotFound", delivery, err)
		}
	}
}

// With claimcheck.DiscardAfter the message is terminated: it is not
// redelivered.
func TestLegacyDiscardTerminates(t *testing.T) {
	errs := make(chan error, 8)
	js, raw, cc := legacySetup(t, claimcheck.DiscardAfter(1), failures(errs))
	if _, err := raw.PublishMsg(goneMsg(cc, "l.t")); err != nil {
		t.Fatal(err)
	}
	sub, err := js.SubscribeSync("l.t", nats.Durable("t"), nats.AckExplicit(), nats.AckWait(time.Second), nats.BindStream("L"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if m, err := sub.NextMsg(2 * time.Second); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("NextMsg: %v, %v; want a timeout", m, err)
	}
	if err := recv(t, errs, time.Second); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("error %v, want stash.ErrNotFound", err)
	}
	info, err := sub.ConsumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("consumer: %d pending acks, %d redelivered; want the message terminated", info.NumAckPending, info.NumRedelivered)
	}
}

// A callback subscription without ManualAck: nats.go acknowledges what the
// callback handled, but a message the wrapper Nak'ed is not acknowledged
// behind its back, so it is redelivered.
func TestLegacyPushAutoAckDoesNotAckFailures(t *testing.T) {
	errs := make(chan error, 8)
	js, raw, cc := legacySetup(t, claimcheck.WithRetryDelay(50*time.Millisecond), failures(errs))
	if _, err := raw.PublishMsg(goneMsg(cc, "l.p")); err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, 1)
	sub, err := js.Subscribe("l.p", func(m *nats.Msg) { got <- m }, nats.Durable("p"), nats.BindStream("L"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for i := 0; i < 2; i++ {
		if err := recv(t, errs, 3*time.Second); !errors.Is(err, stash.ErrNotFound) {
			t.Fatalf("error %d: %v", i, err)
		}
	}
	select {
	case m := <-got:
		t.Fatalf("the callback got a message whose stash is gone: %q", m.Data)
	default:
	}
}

// A channel subscription whose reader went away ends its handler when the
// subscription is closed (goleak checks the rest).
func TestWrappedConnChanUnsubscribeWhileFull(t *testing.T) {
	srv := natstest.Start(t)
	cc, _ := newChecker(t)
	wc, err := ccnats.WrapConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *nats.Msg) // nobody reads it
	sub, err := wc.ChanSubscribe("c", ch)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := wc.Publish("c", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := wc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	wc.Close()
}
