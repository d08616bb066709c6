package ccnats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

func TestConformanceCore(t *testing.T) {
	srv := natstest.Start(t)
	claimchecktest.RunConformanceTests(t, func(t *testing.T, cc *claimcheck.Checker) claimchecktest.Harness {
		conn, err := ccnats.NewConn(srv.Connect(t), cc)
		if err != nil {
			t.Fatal(err)
		}
		return &coreHarness{conn: conn, raw: srv.Connect(t)}
	}, claimchecktest.Features{MaxMessageBytes: 1 << 20})
}

func TestConformanceJetStream(t *testing.T) {
	srv := natstest.Start(t)
	claimchecktest.RunConformanceTests(t, func(t *testing.T, cc *claimcheck.Checker) claimchecktest.Harness {
		raw := srv.JetStream(t)
		js, err := ccnats.NewJetStream(raw, cc)
		if err != nil {
			t.Fatal(err)
		}
		return &jsHarness{js: js, raw: raw, cc: cc}
	}, claimchecktest.Features{MaxMessageBytes: 1 << 20, CheckerOptions: []claimcheck.Option{claimcheck.WithRetryDelay(100 * time.Millisecond)}})
}

func toNATS(topic string, m claimchecktest.Message) *nats.Msg {
	msg := nats.NewMsg(topic)
	for k, v := range m.Headers {
		msg.Header.Set(k, v)
	}
	msg.Data = m.Body
	return msg
}

func fromNATS(h nats.Header, body []byte) claimchecktest.Message {
	m := claimchecktest.Message{Body: body, Headers: map[string]string{}}
	for k, v := range h {
		if len(v) > 0 {
			m.Headers[k] = v[0]
		}
	}
	return m
}

// deliver hands m over unless ctx is done.
func deliver(ctx context.Context, ch chan<- claimchecktest.Message, m claimchecktest.Message) {
	select {
	case ch <- m:
	case <-ctx.Done():
	}
}

// closers stops subscriptions at Close.
type closers struct {
	mu sync.Mutex
	fs []func()
}

func (c *closers) add(f func()) { c.mu.Lock(); c.fs = append(c.fs, f); c.mu.Unlock() }

func (c *closers) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.fs {
		f()
	}
	c.fs = nil
	return nil
}

type coreHarness struct {
	closers
	conn *ccnats.Conn
	raw  *nats.Conn
}

func (h *coreHarness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	for _, m := range msgs {
		if err := h.conn.PublishMsg(ctx, toNATS(topic, m)); err != nil {
			return err
		}
	}
	return h.conn.NATS().FlushWithContext(ctx)
}

func (h *coreHarness) PublishRaw(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	for _, m := range msgs {
		if err := h.raw.PublishMsg(toNATS(topic, m)); err != nil {
			return err
		}
	}
	return h.raw.FlushWithContext(ctx)
}

func (h *coreHarness) subscribe(ctx context.Context, nc *nats.Conn, topic string, wrap func(nats.MsgHandler) nats.MsgHandler) (<-chan claimchecktest.Message, error) {
	ch := make(chan claimchecktest.Message, 64)
	sub, err := nc.Subscribe(topic, wrap(func(m *nats.Msg) { deliver(ctx, ch, fromNATS(m.Header, m.Data)) }))
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	h.add(func() { stop(); _ = sub.Unsubscribe() })
	return ch, nc.FlushWithContext(ctx)
}

func (h *coreHarness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, h.conn.NATS(), topic, func(next nats.MsgHandler) nats.MsgHandler {
		return ccnats.MsgHandler(h.conn.Checker(), next, ccnats.WithLogger(quiet))
	})
}

func (h *coreHarness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, h.raw, topic, func(next nats.MsgHandler) nats.MsgHandler { return next })
}

type jsHarness struct {
	closers
	js  *ccnats.JetStream
	raw jetstream.JetStream
	cc  *claimcheck.Checker
}

func (h *jsHarness) stream(ctx context.Context, topic string) (jetstream.Stream, error) {
	return h.raw.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: topic, Subjects: []string{topic}, Storage: jetstream.MemoryStorage})
}

func (h *jsHarness) publish(ctx context.Context, js jetstream.JetStream, topic string, msgs []claimchecktest.Message) error {
	if _, err := h.stream(ctx, topic); err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := js.PublishMsg(ctx, toNATS(topic, m)); err != nil {
			return err
		}
	}
	return nil
}

func (h *jsHarness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.publish(ctx, h.js, topic, msgs)
}

func (h *jsHarness) PublishRaw(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.publish(ctx, h.raw, topic, msgs)
}

func (h *jsHarness) subscribe(ctx context.Context, topic, durable string, wrap func(jetstream.MessageHandler) jetstream.MessageHandler) (<-chan claimchecktest.Message, error) {
	s, err := h.stream(ctx, topic)
	if err != nil {
		return nil, err
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: durable, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return nil, err
	}
	ch := make(chan claimchecktest.Message, 64)
	cctx, err := cons.Consume(wrap(func(m jetstream.Msg) {
		_ = m.Ack()
		deliver(ctx, ch, fromNATS(m.Headers(), m.Data()))
	}))
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, cctx.Stop)
	h.add(func() { stop(); cctx.Stop() })
	return ch, nil
}

func (h *jsHarness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, "decorated", func(next jetstream.MessageHandler) jetstream.MessageHandler {
		return ccnats.MessageHandler(h.cc, next, ccnats.WithLogger(quiet))
	})
}

func (h *jsHarness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, "raw", func(next jetstream.MessageHandler) jetstream.MessageHandler { return next })
}
