package ccsarama_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkabroker"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(kafkabroker.StopAfter(m), // the shared Apache Kafka broker stops first
		// sarama's metrics registry starts one ticker goroutine per process.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

func TestHeaders(t *testing.T) {
	shared := []sarama.RecordHeader{{Key: []byte("Trace"), Value: []byte("a")}, {Key: []byte("x"), Value: []byte("1")}}
	pm := &sarama.ProducerMessage{Headers: shared}
	h := ccsarama.ProducerHeaders(pm)
	if v, ok := h.Get("Trace"); !ok || v != "a" {
		t.Fatalf("Get(Trace) = %q, %v", v, ok)
	}
	if _, ok := h.Get("trace"); ok {
		t.Fatal("header keys must be case-sensitive")
	}
	if got := h.WireSize(); got != len("Trace")+1+1+1 {
		t.Fatalf("WireSize = %d", got)
	}
	h.Set("x", "2")
	h.Set(claimcheck.HeaderVersion, "1")
	h.Del("Trace")
	if string(shared[0].Key) != "Trace" || string(shared[1].Value) != "1" {
		t.Fatal("Set/Del wrote into the message's original header slice")
	}
	if len(pm.Headers) != 2 || string(pm.Headers[0].Key) != "x" || string(pm.Headers[0].Value) != "2" ||
		string(pm.Headers[1].Key) != claimcheck.HeaderVersion {
		t.Fatalf("headers after Set/Del: %q", pm.Headers)
	}

	cm := &sarama.ConsumerMessage{Headers: []*sarama.RecordHeader{nil, {Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k"), Value: []byte("w")}}}
	ch := ccsarama.ConsumerHeaders(cm)
	if v, ok := ch.Get("k"); !ok || v != "v" {
		t.Fatalf("Get(k) = %q, %v", v, ok)
	}
	ch.Set("k", "z")
	if n := len(cm.Headers); n != 2 {
		t.Fatalf("Set should collapse duplicates: %d headers", n)
	}
	if v, _ := ch.Get("k"); v != "z" {
		t.Fatalf("Get(k) after Set = %q", v)
	}
	ch.Del("k")
	if _, ok := ch.Get("k"); ok || ch.WireSize() != 0 {
		t.Fatal("Del left the header")
	}
	if ccsarama.IsClaimChecked(cm) {
		t.Fatal("plain message reads as claim-checked")
	}
}

func TestVersionRefused(t *testing.T) {
	c, _ := newChecker(t)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V0_10_2_0
	if _, err := ccsarama.WrapSyncProducer(cfg, nopSync{}, c); !errors.Is(err, ccsarama.ErrVersion) {
		t.Fatalf("WrapSyncProducer with 0.10.2: %v, want ErrVersion", err)
	}
	if _, err := ccsarama.WrapAsyncProducer(cfg, nil, c); !errors.Is(err, ccsarama.ErrVersion) {
		t.Fatalf("WrapAsyncProducer with 0.10.2: %v, want ErrVersion", err)
	}
	cfg.Version = sarama.V0_11_0_0
	if _, err := ccsarama.WrapSyncProducer(cfg, nopSync{}, c); err != nil {
		t.Fatalf("0.11: %v", err)
	}
}

type nopSync struct{ sarama.SyncProducer }

// TestSyncLargePayloads sends 5 MiB and 50 MiB through a topic with the
// default 1 MiB limit and checks payload, key and headers on the other side.
func TestSyncLargePayloads(t *testing.T) { eachKafka(t, testSyncLargePayloads) }

func testSyncLargePayloads(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "big", 1, nil)
	c, _ := newChecker(t)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{5 << 20, 50 << 20, 10}
	payloads := map[string][]byte{}
	for i, n := range sizes {
		key := "key-" + strconv.Itoa(i)
		payloads[key] = random(t, n)
		msg := &sarama.ProducerMessage{
			Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(payloads[key]),
			Headers: []sarama.RecordHeader{{Key: []byte("Trace-ID"), Value: []byte("t" + key)}},
		}
		if _, _, err := p.SendMessageContext(context.Background(), msg); err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
	}
	// Raw, the 5 MiB message is refused by the broker: the limit is real.
	raw := sarama.NewConfig()
	raw.Producer.Return.Successes = true
	raw.Producer.MaxMessageBytes = 8 << 20
	if _, _, err := syncProducer(t, k.Addrs, raw).SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(payloads["key-0"])}); !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Fatalf("raw 5 MiB send: %v, want ErrMessageSizeTooLarge", err)
	}

	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-big", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	for _, m := range receive(t, col.got, len(sizes), 30*time.Second) {
		want := payloads[string(m.Key)]
		sameBytes(t, string(m.Key), m.Value, want)
		if v, _ := header(m, "Trace-ID"); v != "t"+string(m.Key) {
			t.Errorf("%s: Trace-ID header = %q", m.Key, v)
		}
		if ccsarama.IsClaimChecked(m) {
			t.Errorf("%s: contract headers left on a rehydrated message", m.Key)
		}
		if _, ok := header(m, claimcheck.HeaderSize); ok {
			t.Errorf("%s: size header left", m.Key)
		}
	}
}

func TestSyncStashFailure(t *testing.T) { eachKafka(t, testSyncStashFailure) }

func testSyncStashFailure(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "fail", 1, nil)
	c, st := newChecker(t)
	st.failing.Store(true)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	body := random(t, 2<<20)
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body)}
	_, _, err = p.SendMessage(msg)
	var ce *claimcheck.Error
	if !errors.As(err, &ce) || !errors.Is(err, errBackendDown) {
		t.Fatalf("SendMessage: %v, want a *claimcheck.Error wrapping the backend's", err)
	}
	if v, _ := msg.Value.Encode(); len(v) != len(body) || len(msg.Headers) != 0 {
		t.Fatal("failed send changed the message")
	}
	// SendMessages: the small one goes, the big one comes back.
	small := &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("small")}
	err = p.SendMessages([]*sarama.ProducerMessage{msg, small})
	var pe sarama.ProducerErrors
	if !errors.As(err, &pe) || len(pe) != 1 || pe[0].Msg != msg || !errors.Is(pe[0].Err, errBackendDown) {
		t.Fatalf("SendMessages: %v", err)
	}
	if hw := highWater(t, k.Addrs, topic, 0); hw != 1 {
		t.Fatalf("%d records on the topic, want 1 (the small one)", hw)
	}
}

func TestAsyncOrderAndFailure(t *testing.T) { eachKafka(t, testAsyncOrderAndFailure) }

func testAsyncOrderAndFailure(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "async", 3, nil)
	c, st := newChecker(t)
	st.delay = 5 * time.Millisecond // uploads are slow: small messages behind them must wait
	cfg := config()
	p := asyncProducer(t, k.Addrs, cfg, c, ccsarama.WithLanes(4))
	const keys, perKey = 6, 12
	big := random(t, 300<<10)
	var wg sync.WaitGroup
	var successes atomic.Int64
	wg.Go(func() {
		for range p.Successes() {
			successes.Add(1)
		}
	})
	var failed []*sarama.ProducerError
	wg.Go(func() {
		for pe := range p.Errors() {
			failed = append(failed, pe)
		}
	})
	for i := range perKey {
		for key := range keys {
			v := []byte(fmt.Sprintf("%d", i))
			if (i+key)%3 == 0 {
				v = append(append([]byte{}, big...), v...) // big ones carry the sequence at the end
			}
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(key)), Value: sarama.ByteEncoder(v),
				Headers: []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))}}}
		}
	}
	// A failure comes back on Errors with the message as it was. Every
	// message before it must have been produced first (an empty Input does
	// not mean the lanes are done offloading).
	deadline := time.Now().Add(20 * time.Second)
	for successes.Load() < keys*perKey {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages produced", successes.Load(), keys*perKey)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.failing.Store(true)
	bad := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("bad"), Value: sarama.ByteEncoder(big)}
	p.Input() <- bad
	if err := p.Close(); err != nil {
		// Close drains Errors itself only if we do not; we do.
		t.Logf("Close: %v", err)
	}
	wg.Wait()
	if len(failed) != 1 || failed[0].Msg != bad || !errors.Is(failed[0].Err, errBackendDown) || len(bad.Headers) != 0 {
		t.Fatalf("errors: %v, want the bad message with the backend's error", failed)
	}
	if got := successes.Load(); got != keys*perKey {
		t.Fatalf("%d successes, want %d", got, keys*perKey)
	}

	col := newCollector("a")
	runGroup(t, k.Addrs, config(), "g-async", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	next := map[string]int{}
	for _, m := range receive(t, col.got, keys*perKey, 30*time.Second) {
		seq, _ := header(m, "seq")
		if want := strconv.Itoa(next[string(m.Key)]); seq != want {
			t.Fatalf("key %s: got seq %s, want %s (per-key order broken)", m.Key, seq, want)
		}
		if len(m.Value) > len(big) && string(m.Value[len(big):]) != seq {
			t.Fatalf("key %s seq %s: payload does not match", m.Key, seq)
		}
		next[string(m.Key)]++
	}
}

// TestMissingStash: a claim-checked message whose stash is gone is never
// delivered, the error is reported, and the group's offset stays on it.
func TestMissingStash(t *testing.T) { eachKafka(t, testMissingStash) }

func testMissingStash(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "gone", 1, nil)
	c, _ := newChecker(t)
	cfg := config()
	p, _ := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	send := func(v []byte) *sarama.ProducerMessage {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(v)}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	send([]byte("first"))
	lost := send(random(t, 400<<10))
	send([]byte("third"))
	addr, _ := lost.Value.Encode()
	if err := c.Engine().Delete(context.Background(), string(addr)); err != nil {
		t.Fatal(err)
	}

	t.Run("stop", func(t *testing.T) {
		reported := make(chan error, 16)
		col := newCollector("a")
		h := ccsarama.WrapConsumerGroupHandler(col, withChecker(t, c, claimcheck.WithObserver(failures(reported))))
		g := runGroup(t, k.Addrs, cfg, "g-stop", []string{topic}, h)
		first := receive(t, col.got, 1, 20*time.Second)[0]
		if string(first.Value) != "first" {
			t.Fatalf("first message = %q", first.Value)
		}
		select {
		case err := <-reported:
			if !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("reported %v, want stash.ErrNotFound", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no error reported")
		}
		select {
		case err := <-g.errs:
			if !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("group error %v, want stash.ErrNotFound", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("ConsumeClaim's error did not reach the group's Errors")
		}
		time.Sleep(300 * time.Millisecond) // more sessions come and go; none may deliver past the hole
		g.stop()
		if n := col.count(); n < 1 {
			t.Fatal("nothing delivered")
		}
		for len(col.got) > 0 {
			if m := <-col.got; string(m.Value) != "first" {
				t.Fatalf("delivered %q past the missing stash", m.Value)
			}
		}
		if off := committed(t, k.Addrs, "g-stop", topic, 0); off != 1 {
			t.Fatalf("committed offset %d, want 1 (the missing message's)", off)
		}
	})

	t.Run("skip", func(t *testing.T) {
		col := newCollector("b")
		var skipped atomic.Int64
		h := ccsarama.WrapConsumerGroupHandler(col, withChecker(t, c, claimcheck.OnRehydrateFailure(func(context.Context, claimcheck.Failure) error {
			skipped.Add(1)
			return nil
		})))
		runGroup(t, k.Addrs, cfg, "g-skip", []string{topic}, h)
		got := receive(t, col.got, 2, 20*time.Second)
		if string(got[0].Value) != "first" || string(got[1].Value) != "third" || skipped.Load() != 1 {
			t.Fatalf("got %q, %q, skipped %d", got[0].Value, got[1].Value, skipped.Load())
		}
	})

	t.Run("interceptor", func(t *testing.T) {
		reported := make(chan error, 4)
		icfg := config()
		icfg.Consumer.Interceptors = []sarama.ConsumerInterceptor{ccsarama.NewConsumerInterceptor(
			withChecker(t, c, claimcheck.WithObserver(failures(reported))))}
		col := newCollector("c")
		runGroup(t, k.Addrs, icfg, "g-icpt", []string{topic}, col)
		got := receive(t, col.got, 3, 20*time.Second)
		if !ccsarama.IsClaimChecked(got[1]) || string(got[1].Value) != string(addr) {
			t.Fatal("the unreadable message was not left claim-checked")
		}
		if ccsarama.IsClaimChecked(got[0]) || ccsarama.IsClaimChecked(got[2]) {
			t.Fatal("plain messages read as claim-checked")
		}
		if err := <-reported; !errors.Is(err, stash.ErrNotFound) {
			t.Fatalf("reported %v", err)
		}
	})
}

// TestUnreadableNeverCommitted: whatever makes a stash unreadable, the
// wrapped handler never sees the message, so the group's committed offset
// stays on it; once the stash can be read again, the next session delivers
// it. Failure handlers only ever see permanent failures.
func TestUnreadableNeverCommitted(t *testing.T) { eachKafka(t, testUnreadableNeverCommitted) }

func testUnreadableNeverCommitted(t *testing.T, k *kafkatest.Broker) {
	for _, tc := range []struct {
		name  string
		route bool // with a failure handler (claimcheck.OnRehydrateFailure)
		// breakStash makes the big message's stash unreadable, fix makes it
		// readable again (nil: it never is).
		breakStash func(t *testing.T, c *claimcheck.Checker, st *flakyStore, addr string)
		fix        func(st *flakyStore)
		// stop ends the first group once the failure is underway.
		stop func(t *testing.T, g *group, st *flakyStore)
	}{{
		name: "deleted, default policy",
		breakStash: func(t *testing.T, c *claimcheck.Checker, _ *flakyStore, addr string) {
			if err := c.Engine().Delete(context.Background(), addr); err != nil {
				t.Fatal(err)
			}
		},
		stop: func(t *testing.T, g *group, _ *flakyStore) { wantGroupError(t, g, stash.ErrNotFound) },
	}, {
		name:       "store down, routed policy",
		route:      true,
		breakStash: func(_ *testing.T, _ *claimcheck.Checker, st *flakyStore, _ string) { st.getFailing.Store(true) },
		fix:        func(st *flakyStore) { st.getFailing.Store(false) },
		stop:       func(t *testing.T, g *group, _ *flakyStore) { wantGroupError(t, g, errBackendDown) },
	}, {
		name:       "claim ends mid-read",
		route:      true,
		breakStash: func(_ *testing.T, _ *claimcheck.Checker, st *flakyStore, _ string) { st.getBlocking.Store(true) },
		fix:        func(st *flakyStore) { st.getBlocking.Store(false) },
		stop: func(t *testing.T, g *group, st *flakyStore) {
			deadline := time.Now().Add(20 * time.Second)
			for st.gets.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the stash was never read")
				}
				time.Sleep(10 * time.Millisecond)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := k.NewTopic(t, "unreadable", 1, nil)
			var mu sync.Mutex
			var routed []error
			var opts []claimcheck.Option
			if tc.route {
				opts = append(opts, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
					mu.Lock()
					defer mu.Unlock()
					routed = append(routed, f.Err)
					return nil
				}))
			}
			c, st := newChecker(t, opts...)
			cfg := config()
			p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
			if err != nil {
				t.Fatal(err)
			}
			big := random(t, 300<<10)
			msgs := []*sarama.ProducerMessage{
				{Topic: topic, Value: sarama.StringEncoder("first")},
				{Topic: topic, Value: sarama.ByteEncoder(big)},
				{Topic: topic, Value: sarama.StringEncoder("third")},
			}
			if err := p.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			addr, _ := msgs[1].Value.Encode()
			tc.breakStash(t, c, st, string(addr))

			col := newCollector("a")
			col.untilClosed = true // it would take a message handed over after the session ended
			g := runGroup(t, k.Addrs, cfg, "g-unreadable", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
			if m := receive(t, col.got, 1, 20*time.Second)[0]; string(m.Value) != "first" {
				t.Fatalf("first message = %q", m.Value)
			}
			tc.stop(t, g, st)
			time.Sleep(200 * time.Millisecond) // let sessions come and go
			g.stop()
			if len(col.got) > 0 {
				t.Fatalf("delivered %q past the unreadable stash", (<-col.got).Value)
			}
			if off := committed(t, k.Addrs, "g-unreadable", topic, 0); off != 1 {
				t.Fatalf("committed offset %d, want 1 (the unreadable message's)", off)
			}
			mu.Lock()
			if len(routed) > 0 {
				t.Errorf("a failure that is not permanent was routed: %v", routed)
			}
			mu.Unlock()
			if tc.fix == nil {
				return
			}
			tc.fix(st)
			col2 := newCollector("b")
			runGroup(t, k.Addrs, cfg, "g-unreadable", []string{topic}, ccsarama.WrapConsumerGroupHandler(col2, c))
			got := receive(t, col2.got, 2, 20*time.Second)
			sameBytes(t, "redelivered", got[0].Value, big)
			if string(got[1].Value) != "third" {
				t.Fatalf("after the redelivered message: %q", got[1].Value)
			}
		})
	}
}

// wantGroupError waits for an error matching target on g's Errors.
func wantGroupError(t *testing.T, g *group, target error) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case err := <-g.errs:
			if errors.Is(err, target) {
				return
			}
			t.Logf("group error: %v", err)
		case <-timeout:
			t.Fatalf("no group error matching %v", target)
		}
	}
}

// TestInterceptors: the drop-in path, both ways, and a stash failure on
// produce that leaves the message to fail on sarama's own size check.
func TestInterceptors(t *testing.T) { eachKafka(t, testInterceptors) }

func testInterceptors(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "drop", 1, nil)
	c, st := newChecker(t)
	var reported []error
	cfg := config()
	cfg.Producer.Interceptors = []sarama.ProducerInterceptor{ccsarama.NewProducerInterceptor(c,
		ccsarama.OnProduceError(func(_ *sarama.ProducerMessage, err error) { reported = append(reported, err) }))}
	cfg.Consumer.Interceptors = []sarama.ConsumerInterceptor{ccsarama.NewConsumerInterceptor(c)}
	p := syncProducer(t, k.Addrs, cfg)
	body := random(t, 5<<20)
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k1"), Value: sarama.ByteEncoder(body)}); err != nil {
		t.Fatal(err)
	}
	st.failing.Store(true)
	other := random(t, 5<<20) // a new payload: the same one would find its stash already written
	failing := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(other)}
	_, _, err := p.SendMessage(failing)
	var ce sarama.ConfigurationError
	if !errors.As(err, &ce) && !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Fatalf("send with the stash down: %v, want sarama's size error", err)
	}
	if len(reported) != 1 || !errors.Is(reported[0], errBackendDown) {
		t.Fatalf("reported %v", reported)
	}
	if claimcheck.IsClaimChecked(ccsarama.ProducerHeaders(failing)) {
		t.Fatal("failed message was marked claim-checked")
	}
	if hw := highWater(t, k.Addrs, topic, 0); hw != 1 {
		t.Fatalf("%d records on the topic, want 1", hw)
	}
	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-drop", []string{topic}, col)
	m := receive(t, col.got, 1, 20*time.Second)[0]
	sameBytes(t, "intercepted", m.Value, body)
	if string(m.Key) != "k1" || ccsarama.IsClaimChecked(m) {
		t.Fatalf("key %q, claim-checked %v", m.Key, ccsarama.IsClaimChecked(m))
	}
}

func TestThreeBrokers(t *testing.T) {
	k := startKafka(t, 3)
	k.CreateTopic(t, "multi", 6, nil)
	testFanOut(t, k, "multi", 12, 1<<20)
}

func testFanOut(t *testing.T, k *kafkatest.Cluster, topic string, n, size int) {
	c, _ := newChecker(t)
	cfg := config()
	p, _ := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	want := map[string][]byte{}
	var msgs []*sarama.ProducerMessage
	for i := range n {
		key := "key-" + strconv.Itoa(i)
		want[key] = random(t, size)
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(want[key])})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	parts := map[int32]bool{}
	for _, m := range msgs {
		parts[m.Partition] = true
	}
	if len(parts) < 2 {
		t.Fatalf("all messages went to %v: keys did not spread", parts)
	}
	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-"+topic, []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	for _, m := range receive(t, col.got, n, 30*time.Second) {
		sameBytes(t, string(m.Key), m.Value, want[string(m.Key)])
	}
}

// TestRebalance: a second consumer joins mid-stream; every message still
// arrives rehydrated, and both consumers take part.
func TestRebalance(t *testing.T) { eachKafka(t, testRebalance) }

func testRebalance(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "rebal", 4, nil)
	c, _ := newChecker(t)
	cfg := config()
	p, _ := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	body := random(t, 300<<10)
	const total = 60
	sendRange := func(from, to int) {
		for i := from; i < to; i++ {
			v := append([]byte(strconv.Itoa(i)+":"), body...)
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(i%8)), Value: sarama.ByteEncoder(v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[string]bool{}
	take := func(m *sarama.ConsumerMessage) {
		i := 0
		for m.Value[i] != ':' {
			i++
		}
		sameBytes(t, "payload "+string(m.Value[:i]), m.Value[i+1:], body)
		if !bytes.HasPrefix(m.Value, []byte("ka")) { // keep-alives are not counted
			seen[string(m.Value[:i])] = true
		}
	}
	a, b := newCollector("a"), newCollector("b")
	runGroup(t, k.Addrs, cfg, "g-rebal", []string{topic}, ccsarama.WrapConsumerGroupHandler(a, c))
	sendRange(0, total/2)
	for _, m := range receive(t, a.got, 10, 20*time.Second) {
		take(m)
	}
	runGroup(t, k.Addrs, cfg, "g-rebal", []string{topic}, ccsarama.WrapConsumerGroupHandler(b, c))
	deadline := time.Now().Add(15 * time.Second)
	for n := 0; b.count() == 0 && time.Now().Before(deadline); n++ {
		// Keep the stream going, over every key, until b gets a share.
		v := append([]byte("ka"+strconv.Itoa(n)+":"), body...)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(n%8)), Value: sarama.ByteEncoder(v)}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-a.got:
			take(m)
		case m := <-b.got:
			take(m)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if b.count() == 0 {
		t.Fatal("the second consumer never got a partition")
	}
	sendRange(total/2, total)
	timeout := time.After(30 * time.Second)
	for len(seen) < total {
		select {
		case m := <-a.got:
			take(m)
		case m := <-b.got:
			take(m)
		case <-timeout:
			t.Fatalf("saw %d of %d distinct messages", len(seen), total)
		}
	}
}

// TestConsumeClaimPanic: when the wrapped handler panics and something
// above recovers, the goroutine rehydrating ahead of it still ends.
func TestConsumeClaimPanic(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, _ := newChecker(t)
	msgs := make(chan *sarama.ConsumerMessage, 1)
	msgs <- &sarama.ConsumerMessage{Topic: "t", Value: []byte("waiting for a reader")}
	h := ccsarama.WrapConsumerGroupHandler(panicHandler{}, c)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the handler's panic", r)
			}
		}()
		_ = h.ConsumeClaim(fakeSession{ctx: context.Background()}, fakeClaim{msgs: msgs})
	}()
}

type panicHandler struct{}

func (panicHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (panicHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (panicHandler) ConsumeClaim(sarama.ConsumerGroupSession, sarama.ConsumerGroupClaim) error {
	time.Sleep(20 * time.Millisecond) // let the message be rehydrated and offered
	panic("boom")
}

// fakeSession and fakeClaim are the unit edge: the parts of sarama's
// session and claim the wrapper uses.
type fakeSession struct {
	sarama.ConsumerGroupSession
	ctx context.Context
}

func (s fakeSession) Context() context.Context { return s.ctx }

type fakeClaim struct {
	sarama.ConsumerGroupClaim
	msgs chan *sarama.ConsumerMessage
}

func (c fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

// withChecker is a checker over c's engine with opts.
func withChecker(t testing.TB, c *claimcheck.Checker, opts ...claimcheck.Option) *claimcheck.Checker {
	t.Helper()
	cc, err := claimcheck.New(c.Engine(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// failures is an observer that sends rehydrate failures to ch.
func failures(ch chan<- error) claimcheck.Observer {
	return claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
			select {
			case ch <- ev.Err:
			default:
			}
		}
	})
}
