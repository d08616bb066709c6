package ccnats_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	_ "github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

func newStream(t testing.TB, js jetstream.JetStream, name string, subjects ...string) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(ctxT(t), jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newConsumer(t testing.TB, s jetstream.Stream, name string) jetstream.Consumer {
	return newConsumerAckWait(t, s, name, 30*time.Second)
}

func newConsumerAckWait(t testing.TB, s jetstream.Stream, name string, ackWait time.Duration) jetstream.Consumer {
	t.Helper()
	c, err := s.CreateOrUpdateConsumer(ctxT(t), jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkJS asserts a received message is the published one, rehydrated.
func checkJS(t testing.TB, m jetstream.Msg, body []byte, id string) {
	t.Helper()
	if !equalBody(t, m.Data(), body) {
		t.FailNow()
	}
	if got := m.Headers().Get("id"); got != id {
		t.Fatalf("header id = %q, want %q (headers %v)", got, id, m.Headers())
	}
	if claimcheck.IsClaimChecked(ccnats.Header(m.Headers())) {
		t.Fatalf("contract headers left: %v", m.Headers())
	}
}

// 8 MiB messages through JetStream, published sync and async, read through
// Consume, Messages and Fetch.
func TestJetStreamLargeMessages(t *testing.T) {
	srv := natstest.Start(t)
	raw := srv.JetStream(t)
	cc, _ := newChecker(t)
	js, err := ccnats.NewJetStream(raw, cc)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, js, "BIG", "js.>")
	ctx := ctxT(t)
	bodies := [][]byte{payload(8<<20, 1), payload(8<<20, 2)}
	if _, err := raw.Publish(ctx, "js.big", bodies[0]); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("raw publish: err = %v, want nats.ErrMaxPayload", err)
	}
	m := nats.NewMsg("js.big")
	m.Header.Set("id", "0")
	m.Data = bodies[0]
	if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID("0")); err != nil {
		t.Fatal(err)
	}
	m = nats.NewMsg("js.big")
	m.Header.Set("id", "1")
	m.Data = bodies[1]
	f, err := js.PublishMsgAsync(m)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ok():
	case err := <-f.Err():
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no ack for the async publish")
	}

	t.Run("Consume", func(t *testing.T) {
		got := make(chan jetstream.Msg, 2)
		cons := newConsumer(t, s, "consume")
		cctx, err := cons.Consume(ccnats.MessageHandler(cc, func(m jetstream.Msg) {
			if err := m.Ack(); err != nil {
				t.Error(err)
			}
			got <- m
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer cctx.Stop()
		for i := range 2 {
			checkJS(t, recv(t, got, 10*time.Second), bodies[i], fmt.Sprint(i))
		}
	})
	t.Run("Messages", func(t *testing.T) {
		it, err := newConsumer(t, s, "messages").Messages()
		if err != nil {
			t.Fatal(err)
		}
		it = ccnats.Messages(cc, it)
		defer it.Stop()
		for i := range 2 {
			m, err := it.Next(jetstream.NextMaxWait(10 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			checkJS(t, m, bodies[i], fmt.Sprint(i))
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("Fetch", func(t *testing.T) {
		cons := newConsumer(t, s, "fetch")
		b, err := cons.Fetch(5, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range ccnats.Batch(ctx, cc, b).Messages() {
			checkJS(t, m, bodies[n], fmt.Sprint(n))
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 2 {
			t.Fatalf("fetched %d messages, want 2", n)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending != 0 || info.AckFloor.Consumer != 2 {
			t.Fatalf("acks did not reach the server: %+v", info)
		}
	})
}

// publishGone publishes a claim-checked message whose stash has been
// deleted, and returns the body that would recreate it.
func publishGone(t testing.TB, cc *claimcheck.Checker, eng *stash.Engine, js jetstream.JetStream, subj string) []byte {
	t.Helper()
	ctx := ctxT(t)
	body := payload(1<<20, 99)
	h := claimcheck.MapHeaders{"id": "late"}
	out, addr, err := cc.Offload(ctx, subj, body, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Delete(ctx, addr); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subj)
	for k, v := range h {
		m.Header.Set(k, v)
	}
	m.Data = out
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	return body
}

// A message whose stash is missing is Nak'ed with a delay and redelivered;
// once the stash exists it goes through.
func TestJetStreamRedeliversWhenStashMissing(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	var failed atomic.Int32
	recreate := make(chan struct{})
	var lastFail time.Time
	var mu sync.Mutex
	cc, eng := newChecker(t, claimcheck.WithRetryDelay(150*time.Millisecond), claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if ev.Op != claimcheck.OpRehydrate || ev.Err == nil {
			return
		}
		if !errors.Is(ev.Err, stash.ErrNotFound) {
			t.Errorf("err = %v, want stash.ErrNotFound", ev.Err)
		}
		mu.Lock()
		lastFail = time.Now()
		mu.Unlock()
		if failed.Add(1) == 2 {
			close(recreate)
		}
	})))
	s := newStream(t, js, "LATE", "late")
	body := publishGone(t, cc, eng, js, "late")

	got := make(chan jetstream.Msg, 1)
	cctx, err := newConsumer(t, s, "late").Consume(ccnats.MessageHandler(cc, func(m jetstream.Msg) {
		_ = m.Ack()
		got <- m
	}, ccnats.WithLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	defer cctx.Stop()

	recv(t, recreate, 10*time.Second)
	// The stash is written late: the same body gives the same address.
	if _, _, err := cc.Offload(ctxT(t), "late", body, claimcheck.MapHeaders{}); err != nil {
		t.Fatal(err)
	}
	m := recv(t, got, 10*time.Second)
	mu.Lock()
	since := time.Since(lastFail)
	mu.Unlock()
	checkJS(t, m, body, "late")
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if md.NumDelivered < 3 {
		t.Fatalf("delivered %d times, want at least 3 (two Naks)", md.NumDelivered)
	}
	if since > 5*time.Second {
		t.Fatalf("redelivery took %v", since)
	}
}

// Under the checker's DiscardAfter(2) a message whose stash is gone is
// terminated at its second delivery and never reaches the handler.
func TestJetStreamDiscardAfter(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	errs := make(chan error, 10)
	cc, eng := newChecker(t, claimcheck.DiscardAfter(2), claimcheck.WithRetryDelay(50*time.Millisecond), failures(errs))
	s := newStream(t, js, "GONE", "gone")
	publishGone(t, cc, eng, js, "gone")

	cons := newConsumer(t, s, "gone")
	cctx, err := cons.Consume(ccnats.MessageHandler(cc, func(m jetstream.Msg) {
		t.Errorf("handler called with %d bytes", len(m.Data()))
	}, ccnats.WithLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	defer cctx.Stop()
	for range 2 {
		if err := recv(t, errs, 10*time.Second); !errors.Is(err, stash.ErrNotFound) {
			t.Fatalf("err = %v, want stash.ErrNotFound", err)
		}
	}
	select {
	case err := <-errs:
		t.Fatalf("delivered again after Term: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	info, err := cons.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("message still pending after Term: %+v", info)
	}
}

// DiscardAfter(1) terminates at the first delivery; Rehydrate settles and
// returns the error itself.
func TestRehydrateTermsImmediately(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	cc, eng := newChecker(t, claimcheck.DiscardAfter(1))
	s := newStream(t, js, "NOW", "now")
	publishGone(t, cc, eng, js, "now")
	cons := newConsumer(t, s, "now")
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := recv(t, b.Messages(), 5*time.Second)
	if _, err := ccnats.Rehydrate(ctxT(t), cc, m); !errors.Is(err, ccnats.ErrTerminated) {
		t.Fatalf("err = %v, want ErrTerminated", err)
	}
	b, err = cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		t.Fatalf("terminated message redelivered: %v", m.Subject())
	}
}

// A server restart in the middle of a run loses nothing: the stream and
// consumer are on file storage, the stash on disk, and the publisher retries
// with a message ID so a retry is not a duplicate.
func TestJetStreamServerRestart(t *testing.T) {
	srv := natstest.Start(t)
	eng, err := stash.New(stash.WithBackendURL(context.Background(), "file://"+t.TempDir()+"?nosync=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	// A read that fails while the server is down comes back quickly.
	cc, err := claimcheck.New(eng, claimcheck.WithRetryDelay(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	js, err := ccnats.NewJetStream(srv.JetStream(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, js, "DURABLE", "durable")
	const n = 30
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = payload(300<<10, uint64(i))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	all := make(chan struct{})
	// A message whose ack is lost in the restart comes back after AckWait.
	cctx, err := newConsumerAckWait(t, s, "durable", 2*time.Second).Consume(ccnats.MessageHandler(cc, func(m jetstream.Msg) {
		id := m.Headers().Get("id")
		var i int
		if _, err := fmt.Sscan(id, &i); err != nil || i < 0 || i >= n {
			t.Errorf("bad id %q", id)
			return
		}
		if !equalBody(t, m.Data(), bodies[i]) {
			return
		}
		if err := m.DoubleAck(context.Background()); err != nil {
			return // not acked: it will be redelivered
		}
		mu.Lock()
		defer mu.Unlock()
		seen[id]++
		if len(seen) == n {
			select {
			case <-all:
			default:
				close(all)
			}
		}
	}), jetstream.PullExpiry(2*time.Second), jetstream.PullHeartbeat(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cctx.Stop()

	ctx := ctxT(t)
	retries := 0
	for i := range n {
		if i == n/2 {
			srv.Restart(t)
		}
		m := nats.NewMsg("durable")
		m.Header.Set("id", fmt.Sprint(i))
		m.Data = bodies[i]
		for {
			_, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprint(i)), jetstream.WithRetryAttempts(5), jetstream.WithRetryWait(100*time.Millisecond))
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			retries++
			time.Sleep(100 * time.Millisecond)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("received %d of %d distinct messages", len(seen), n)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d messages, want %d (a retry was stored twice or one was lost)", info.State.Msgs, n)
	}
	t.Logf("publish retries across the restart: %d", retries)
}
