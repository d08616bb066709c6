package integration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// natsSide is one process's view of NATS: its own connection, JetStream
// context, nats:// stash and claim checker.
type natsSide struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	checker  *claimcheck.Checker
	counters *claimcheck.Counters
	// onFailure, when set, sees every rehydrate failure the checker's
	// observer reports.
	onFailure atomic.Pointer[func(error)]
}

// failed sets what sees the rehydrate failures of the side's checker.
func (s *natsSide) failed(f func(error)) { s.onFailure.Store(&f) }

func newNATSSide(t *testing.T, e *env, name string) *natsSide {
	t.Helper()
	nc, err := nats.Connect(e.NATSURL, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := natsstash.New(js)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := stash.New(stash.WithBackend(store), stash.WithNamespace("integration"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	side := &natsSide{nc: nc, js: js, counters: &claimcheck.Counters{}}
	failures := claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if f := side.onFailure.Load(); f != nil && ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
			(*f)(ev.Err)
		}
	})
	c, err := claimcheck.New(engine, claimcheck.WithObserver(claimcheck.Observers(side.counters, failures)))
	if err != nil {
		t.Fatal(err)
	}
	side.checker = c
	return side
}

func natsMessage(subject string, seed uint64, i int, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set("id", strconv.Itoa(i))
	m.Header.Set("producer", "integration")
	return m
}

func createStream(t *testing.T, js jetstream.JetStream, name, subjects string) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subjects}})
	if err != nil {
		t.Fatalf("creating stream %s: %v", name, err)
	}
	return s
}

// TestJetStreamToCoreNATS: JetStream publisher -> nats:// stash -> core
// NATS subscriber. The stream stores the small claim-checked messages, a
// plain subscriber on the same subjects gets them live and rehydrates them.
func TestJetStreamToCoreNATS(t *testing.T) {
	scenario(t, func(t *testing.T, e *env) {
		n := 2 * largeEvery
		name := uniqueName("orders")
		subject := name + ".created"
		prod, cons := newNATSSide(t, e, "producer"), newNATSSide(t, e, "consumer")
		stream := createStream(t, prod.js, name, name+".>")
		seed := uint64(time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()

		// The server keeps its 1 MiB max_payload: undecorated, a large
		// message does not get through.
		if _, err := prod.js.PublishMsg(ctx, natsMessage(subject, seed, 0, payload(seed, 0))); !errors.Is(err, nats.ErrMaxPayload) {
			t.Fatalf("undecorated 32 MiB JetStream publish: %v, want %v", err, nats.ErrMaxPayload)
		}

		ta := newTally(seed, n)
		var handlerErrs []error
		var mu sync.Mutex
		cc, err := ccnats.NewConn(cons.nc, cons.checker)
		if err != nil {
			t.Fatal(err)
		}
		cons.failed(func(err error) { mu.Lock(); handlerErrs = append(handlerErrs, err); mu.Unlock() })
		sub, err := cc.Subscribe(name+".>", func(m *nats.Msg) { ta.check(m.Data, m.Header.Get) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := cons.nc.Flush(); err != nil { // the subscription is live before the first publish
			t.Fatal(err)
		}

		pub, err := ccnats.NewJetStream(prod.js, prod.checker)
		if err != nil {
			t.Fatal(err)
		}
		large, smallBytes := 0, 0
		for i := range n {
			body := payload(seed, i)
			if len(body) > claimcheck.DefaultThreshold {
				large++
			} else {
				smallBytes += len(body)
			}
			if _, err := pub.PublishMsg(ctx, natsMessage(subject, seed, i, body), jetstream.WithMsgID(name+"-"+strconv.Itoa(i))); err != nil {
				t.Fatalf("message %d (%d bytes): %v", i, len(body), err)
			}
		}
		ta.waitDistinct(t, n, 2*time.Minute)
		time.Sleep(100 * time.Millisecond) // a duplicate would show now
		ta.report(t)
		mu.Lock()
		for _, err := range handlerErrs {
			t.Errorf("rehydrate: %v", err)
		}
		mu.Unlock()
		if d, dup := ta.counts(); d != n || dup != 0 {
			t.Errorf("received %d distinct with %d duplicates, want %d and none", d, dup, n)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != uint64(n) || info.State.Bytes > uint64(smallBytes+n*1024) {
			t.Errorf("stream holds %d messages, %d bytes; want %d messages, at most %d bytes", info.State.Msgs, info.State.Bytes, n, smallBytes+n*1024)
		}
		ps, cs := prod.counters.Snapshot(), cons.counters.Snapshot()
		if ps.Offloaded != int64(large) || cs.Rehydrated != int64(large) || cs.RehydrateFailures != 0 {
			t.Errorf("producer %+v, consumer %+v; want %d offloaded and rehydrated", ps, cs, large)
		}
		t.Logf("%s: %d messages, %d through the nats:// stash; stream holds %d bytes", e.Mode, n, large, info.State.Bytes)
	})
}

// TestJetStreamConsumerKilled stops a durable JetStream consumer
// mid-message and starts another on the same durable: nothing is lost, the
// message the first consumer died on is redelivered to the second, and the
// duplicates are exactly redeliveries of messages the first consumer had
// received (JetStream is at-least-once).
//
// Every handler must settle each message well within AckWait: a message
// acknowledged after AckWait has already been redelivered to the same
// consumer (the late ack still acknowledges it, so it is not redelivered
// again). The bodies are therefore kept to what the test is about, about
// 1.5 MiB at most, not the volume tests' 32 MiB, whose rehydration and check
// under -race on a loaded machine take longer than any sensible AckWait.
func TestJetStreamConsumerKilled(t *testing.T) {
	scenario(t, func(t *testing.T, e *env) {
		const (
			n      = 150
			killOn = 40 // claim-checked; the first consumer dies on it
			// AckWait bounds how long the killed message waits for its
			// redelivery, and must exceed the longest a message waits for
			// its ack (in the client's buffer, then in the handler): about
			// 1.5 s under -race on 2 loaded cores, for the first
			// claim-checked message, which also opens the stash.
			ackWait = 5 * time.Second
		)
		name := uniqueName("jobs")
		prod := newNATSSide(t, e, "producer")
		createStream(t, prod.js, name, name+".>")
		seed := uint64(time.Now().UnixNano())
		body := func(i int) []byte {
			b := payload(seed, i)
			if len(b) > 8<<10 {
				b = b[:8<<10] // payload's large messages are for the volume tests
			}
			if i%5 == 0 {
				return append(b, make([]byte, 1500<<10)...) // over max_payload
			}
			return b
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		pub, err := ccnats.NewJetStream(prod.js, prod.checker)
		if err != nil {
			t.Fatal(err)
		}
		sendDone := make(chan error, 1)
		go func() {
			for i := range n {
				if _, err := pub.PublishMsg(ctx, natsMessage(name+".run", seed, i, body(i))); err != nil {
					sendDone <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			sendDone <- nil
		}()

		durable := func(side *natsSide) jetstream.Consumer {
			c, err := side.js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{
				Durable:       "worker",
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       ackWait,
				MaxAckPending: 4,
			})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// slowest is the longest a handler took from receiving a message to
		// acknowledging it, to tell a slow run from a broken one.
		var slowMu sync.Mutex
		var slowest time.Duration
		timed := func(h jetstream.MessageHandler) jetstream.MessageHandler {
			return func(m jetstream.Msg) {
				start := time.Now()
				h(m)
				slowMu.Lock()
				slowest = max(slowest, time.Since(start))
				slowMu.Unlock()
			}
		}

		// The first consumer dies on the first delivery of message killOn:
		// it never acknowledges it, so JetStream must redeliver it.
		first := &recorder{seed: seed, body: body}
		side1 := newNATSSide(t, e, "worker-1")
		died := make(chan struct{})
		side1.failed(func(err error) {
			select {
			case <-died:
				// The process is dying: JetStream redelivers what it had.
			default:
				t.Errorf("first consumer: %v", err)
			}
		})
		var once sync.Once
		cc1, err := durable(side1).Consume(timed(ccnats.MessageHandler(side1.checker, func(m jetstream.Msg) {
			select {
			case <-died:
				return // dead: handles nothing more
			default:
			}
			first.record(t, m.Data(), m.Headers().Get)
			if atoi(m.Headers().Get("id")) == killOn {
				once.Do(func() { close(died) }) // killed mid-message: never acked
				return
			}
			if err := m.Ack(); err != nil {
				t.Errorf("first consumer: ack: %v", err)
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-died:
		case <-time.After(2 * time.Minute):
			t.Fatalf("first consumer got %d messages, not message %d", first.total(), killOn)
		}
		cc1.Stop()
		side1.nc.Close() // the process is gone

		second := &recorder{seed: seed, body: body}
		side2 := newNATSSide(t, e, "worker-2")
		side2.failed(func(err error) { t.Errorf("second consumer: %v", err) })
		var redelivered sync.Map
		var mu sync.Mutex
		cc2, err := durable(side2).Consume(timed(ccnats.MessageHandler(side2.checker, func(m jetstream.Msg) {
			mu.Lock()
			defer mu.Unlock()
			second.record(t, m.Data(), m.Headers().Get)
			if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
				redelivered.Store(second.last, md.NumDelivered)
			}
			if err := m.Ack(); err != nil {
				t.Errorf("second consumer: ack: %v", err)
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		defer cc2.Stop()
		if err := <-sendDone; err != nil {
			t.Fatalf("producer: %v", err)
		}
		// Every message has arrived, and the one the first consumer died
		// on has been redelivered (AckWait after it was delivered).
		deadline := time.Now().Add(time.Minute + 10*ackWait)
		for first.union(second) < n || second.count(killOn) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("first %d, second %d deliveries: %d of %d distinct; message %d redelivered %d times",
					first.total(), second.total(), first.union(second), n, killOn, second.count(killOn))
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // a late duplicate still counts
		cc2.Stop()

		mu.Lock()
		defer mu.Unlock()
		dups := 0
		for i, k := range first.seen {
			if k > 1 {
				t.Errorf("message %d delivered %d times to the first consumer", i, k)
			}
		}
		for i, k := range second.seen {
			if k > 1 {
				t.Errorf("message %d delivered %d times to the second consumer", i, k)
			}
			if first.seen[i] > 0 {
				dups++
				if _, ok := redelivered.Load(i); !ok {
					t.Errorf("message %d reached both consumers but is not marked redelivered", i)
				}
			}
		}
		if s := side2.counters.Snapshot(); s.RehydrateFailures != 0 {
			t.Errorf("second consumer: %+v", s)
		}
		slowMu.Lock()
		defer slowMu.Unlock()
		t.Logf("first consumer: %d deliveries (killed on message %d); second: %d; taken over from the first: %d; lost: 0; slowest handler %v",
			first.total(), killOn, second.total(), dups, slowest.Round(time.Millisecond))
	})
}
