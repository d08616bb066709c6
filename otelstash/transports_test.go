package otelstash_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/dnwe/otelsarama"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/transports/ccnats"
	"github.com/claimstash/claimstash/transports/ccsarama"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics registry starts a ticker it never stops.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// checkCounts checks the message counts of one small and one big message
// sent and received.
func checkCounts(t *testing.T, tm *telemetry, topic string) {
	t.Helper()
	for _, c := range []struct {
		op, outcome string
		want        int64
	}{
		{claimcheck.OpOffload, otelstash.OutcomePassed, 1},
		{claimcheck.OpOffload, otelstash.OutcomeOffloaded, 1},
		{claimcheck.OpRehydrate, otelstash.OutcomeRehydrated, 1},
		{claimcheck.OpRehydrate, otelstash.OutcomePlain, 1},
		{claimcheck.OpRehydrate, otelstash.OutcomeFailed, 0},
	} {
		if got := tm.sum(t, otelstash.MetricMessages, semconvOp(c.op), outcome(c.outcome), destination(topic)); got != c.want {
			t.Errorf("%s %s on %s: %d, want %d", c.op, c.outcome, topic, got, c.want)
		}
	}
	if got := tm.sum(t, otelstash.MetricOffloadPayload); got != 64<<10 {
		t.Errorf("offloaded bytes %d, want %d", got, 64<<10)
	}
	if got := tm.sum(t, otelstash.MetricRehydratePayload); got != 64<<10 {
		t.Errorf("rehydrated bytes %d, want %d", got, 64<<10)
	}
}

// TestWatermill: the publish span is in the message's context (Watermill's
// tracing decorators put it there); the subscriber decorator rehydrates
// before any router middleware runs, so its span continues the trace from
// the traceparent metadata; ccwatermill.Middleware after a tracing
// middleware is a child of the process span in the message's context.
func TestWatermill(t *testing.T) {
	tm := newTelemetry(t)
	_, c, _ := newMem(t, tm)
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer gc.Close()
	pub, sub := ccwatermill.NewPublisher(gc, c), ccwatermill.NewSubscriber(gc, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	big := random(64 << 10)
	pctx, publish := tm.tracer().Start(ctx, "orders publish")
	for _, body := range [][]byte{[]byte("small"), big} {
		m := message.NewMessage(watermill.NewUUID(), body)
		m.SetContext(pctx)
		if err := pub.Publish("orders", m); err != nil {
			t.Fatal(err)
		}
	}
	publish.End()
	var got []*message.Message
	for range 2 {
		select {
		case m := <-msgs:
			m.Ack()
			got = append(got, m)
		case <-time.After(10 * time.Second):
			t.Fatal("timed out")
		}
	}
	if len(got[0].Payload) > len(got[1].Payload) {
		got[0], got[1] = got[1], got[0] // gochannel does not keep the order
	}
	if !bytes.Equal(got[1].Payload, big) {
		t.Fatal("big message not rehydrated")
	}
	offload := tm.one(t, "offload orders")
	childOf(t, offload, tm.one(t, "orders publish"))
	childOf(t, tm.one(t, "rehydrate orders"), offload)
	if tp := got[1].Metadata.Get("traceparent"); tp == "" {
		t.Error("no traceparent in the metadata")
	}
	checkCounts(t, tm, "orders")

	// Router style: a tracing middleware's process span in the context.
	m := message.NewMessage(watermill.NewUUID(), nil)
	if err := ccwatermill.Offload(c, "orders", func() *message.Message { m.Payload = big; return m }()); err != nil {
		t.Fatal(err)
	}
	pctx2, process := tm.tracer().Start(context.Background(), "orders process")
	m.SetContext(pctx2)
	h := ccwatermill.Middleware(c)(func(msg *message.Message) ([]*message.Message, error) {
		if !bytes.Equal(msg.Payload, big) {
			t.Error("middleware did not rehydrate")
		}
		return nil, nil
	})
	if _, err := h(m); err != nil {
		t.Fatal(err)
	}
	process.End()
	// Outside a router the context names no topic: the span is "rehydrate".
	// Its parent is the process span; the producer's context is a link.
	rehydrate := tm.one(t, "rehydrate")
	childOf(t, rehydrate, tm.one(t, "orders process"))
	offloads := tm.ended("offload orders")
	if links := rehydrate.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != offloads[len(offloads)-1].SpanContext().SpanID() {
		t.Errorf("rehydrate links %v, want the producer's offload span", links)
	}
}

// TestSarama: otelsarama wraps the claim-checking producer and handler, so
// its publish and receive spans come first and travel in the record
// headers; offload and rehydrate are their children. Over kfake.
func TestSarama(t *testing.T) {
	tm := newTelemetry(t)
	_, c, _ := newMem(t, tm)
	kc := kafkatest.Start(t, 1, kfake.GroupMinSessionTimeout(100*time.Millisecond))
	kc.CreateTopic(t, "orders", 1, nil)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 2 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 2 * time.Second
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	otelOpts := []otelsarama.Option{otelsarama.WithTracerProvider(tm.tp), otelsarama.WithPropagators(propagation.TraceContext{})}

	raw, err := sarama.NewSyncProducer(kc.Addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ccsarama.WrapSyncProducer(cfg, raw, c)
	if err != nil {
		t.Fatal(err)
	}
	prod := otelsarama.WrapSyncProducer(cfg, cc, otelOpts...)
	defer prod.Close()
	big := random(64 << 10)
	for _, body := range [][]byte{[]byte("small"), big} {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.ByteEncoder(body)}); err != nil {
			t.Fatal(err)
		}
	}

	group, err := sarama.NewConsumerGroup(kc.Addrs, "g", cfg)
	if err != nil {
		t.Fatal(err)
	}
	col := &saramaCollector{got: make(chan *sarama.ConsumerMessage, 2)}
	handler := otelsarama.WrapConsumerGroupHandler(ccsarama.WrapConsumerGroupHandler(col, c), otelOpts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{"orders"}, handler); err != nil {
				return
			}
		}
	}()
	var got []*sarama.ConsumerMessage
	for range 2 {
		select {
		case m := <-col.got:
			got = append(got, m)
		case <-time.After(20 * time.Second):
			t.Fatal("timed out")
		}
	}
	cancel()
	<-done
	if err := group.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1].Value, big) {
		t.Fatal("big message not rehydrated")
	}
	publishes := tm.ended("orders publish")
	if len(publishes) != 2 {
		t.Fatalf("%d otelsarama publish spans, want 2 (%s)", len(publishes), tm.names())
	}
	offload := tm.one(t, "offload orders")
	childOf(t, offload, publishes[1])
	receives := tm.ended("orders receive")
	if len(receives) != 2 {
		t.Fatalf("%d otelsarama receive spans, want 2 (%s)", len(receives), tm.names())
	}
	childOf(t, receives[1], publishes[1])
	childOf(t, tm.one(t, "rehydrate orders"), receives[1])
	checkCounts(t, tm, "orders")
}

type saramaCollector struct{ got chan *sarama.ConsumerMessage }

func (*saramaCollector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*saramaCollector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *saramaCollector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			sess.MarkMessage(m, "")
			c.got <- m
		case <-sess.Context().Done():
			return nil
		}
	}
}

// TestNATS: nats.go has no tracing of its own, so the offload span stands
// alone and the consumer's rehydrate span continues its trace from the
// traceparent header. Over an embedded nats-server.
func TestNATS(t *testing.T) {
	tm := newTelemetry(t)
	_, c, _ := newMem(t, tm)
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	conn, err := ccnats.NewConn(nc, c)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, 2)
	sub, err := conn.Subscribe("orders", func(m *nats.Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	big := random(64 << 10)
	for _, body := range [][]byte{[]byte("small"), big} {
		if err := conn.Publish(context.Background(), "orders", body); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []*nats.Msg
	for range 2 {
		select {
		case m := <-got:
			msgs = append(msgs, m)
		case <-time.After(10 * time.Second):
			t.Fatal("timed out")
		}
	}
	if !bytes.Equal(msgs[1].Data, big) {
		t.Fatal("big message not rehydrated")
	}
	offload := tm.one(t, "offload orders")
	if offload.Parent().IsValid() {
		t.Errorf("offload span has a parent %s, want it standing alone", offload.Parent().SpanID())
	}
	childOf(t, tm.one(t, "rehydrate orders"), offload)
	if msgs[1].Header.Get("traceparent") == "" {
		t.Error("no traceparent header")
	}
	checkCounts(t, tm, "orders")
}

// TestJetStream: the same over JetStream, where the stash backend is the
// NATS object store of the same server.
func TestJetStream(t *testing.T) {
	tm := newTelemetry(t)
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	store, err := natsstash.New(js)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e, err := stash.New(stash.WithBackend(store), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, claimcheck.WithThreshold(4<<10), tm.inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	cjs, err := ccnats.NewJetStream(js, c)
	if err != nil {
		t.Fatal(err)
	}
	big := random(64 << 10)
	pctx, publish := tm.tracer().Start(ctx, "orders publish")
	for _, body := range [][]byte{[]byte("small"), big} {
		if _, err := cjs.Publish(pctx, "orders", body); err != nil {
			t.Fatal(err)
		}
	}
	publish.End()
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 2)
	cc, err := cons.Consume(ccnats.MessageHandler(c, func(m jetstream.Msg) {
		_ = m.Ack()
		got <- m.Data()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	var bodies [][]byte
	for range 2 {
		select {
		case b := <-got:
			bodies = append(bodies, b)
		case <-ctx.Done():
			t.Fatal("timed out")
		}
	}
	if !bytes.Equal(bodies[1], big) {
		t.Fatal("big message not rehydrated")
	}
	offload := tm.one(t, "offload orders")
	childOf(t, offload, tm.one(t, "orders publish"))
	childOf(t, tm.one(t, "rehydrate orders"), offload)
	if n := len(tm.ended("nats put")); n != 1 {
		t.Errorf("%d nats put spans, want 1", n)
	}
	checkCounts(t, tm, "orders")
}
