package ccnats_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// The drop-in wrapper runs the conformance suite once per way of receiving:
// callback, channel and NextMsg on core NATS; push callback, push NextMsg,
// push channel and pull Fetch on the legacy JetStream context.
func TestConformanceWrappedConn(t *testing.T) {
	srv := natstest.Start(t)
	for _, mode := range []string{"callback", "chan", "sync"} {
		t.Run(mode, func(t *testing.T) {
			claimchecktest.RunConformanceTests(t, func(t *testing.T, cc *claimcheck.Checker) claimchecktest.Harness {
				wc, err := ccnats.WrapConn(srv.Connect(t), cc, ccnats.WithLogger(quiet))
				if err != nil {
					t.Fatal(err)
				}
				return &wrapHarness{wc: wc, raw: srv.Connect(t), mode: mode}
			}, claimchecktest.Features{MaxMessageBytes: 1 << 20})
		})
	}
}

func TestConformanceLegacyJetStream(t *testing.T) {
	srv := natstest.Start(t)
	for _, mode := range []string{"push", "sync", "chan", "pull", "fetchbatch"} {
		t.Run(mode, func(t *testing.T) {
			claimchecktest.RunConformanceTests(t, func(t *testing.T, cc *claimcheck.Checker) claimchecktest.Harness {
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
				return &legacyHarness{js: js, raw: raw, mode: mode}
			}, claimchecktest.Features{MaxMessageBytes: 1 << 20,
				CheckerOptions: []claimcheck.Option{claimcheck.WithRetryDelay(100 * time.Millisecond)}})
		})
	}
}

// loops runs polling goroutines and stops them at Close.
type loops struct {
	closers
	wg sync.WaitGroup
}

// poll calls next until ctx is done or Close, delivering what it returns.
func (l *loops) poll(ctx context.Context, ch chan claimchecktest.Message, next func() ([]*nats.Msg, error)) {
	ctx, cancel := context.WithCancel(ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for ctx.Err() == nil {
			msgs, err := next()
			if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
				return
			}
			for _, m := range msgs {
				_ = m.Ack()
				deliver(ctx, ch, fromNATS(m.Header, m.Data))
			}
		}
	}()
	l.add(func() { cancel(); l.wg.Wait() })
}

// pump forwards a channel subscription's messages until ctx is done or
// Close.
func (l *loops) pump(ctx context.Context, in <-chan *nats.Msg, out chan claimchecktest.Message) {
	ctx, cancel := context.WithCancel(ctx)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case m := <-in:
				_ = m.Ack()
				deliver(ctx, out, fromNATS(m.Header, m.Data))
			case <-ctx.Done():
				return
			}
		}
	}()
	l.add(func() { cancel(); l.wg.Wait() })
}

type wrapHarness struct {
	loops
	wc   *ccnats.WrappedConn
	raw  *nats.Conn
	mode string
}

func (h *wrapHarness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	for _, m := range msgs {
		if err := h.wc.PublishMsg(toNATS(topic, m)); err != nil {
			return err
		}
	}
	return h.wc.FlushWithContext(ctx)
}

func (h *wrapHarness) PublishRaw(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	for _, m := range msgs {
		if err := h.raw.PublishMsg(toNATS(topic, m)); err != nil {
			return err
		}
	}
	return h.raw.FlushWithContext(ctx)
}

func (h *wrapHarness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	ch := make(chan claimchecktest.Message, 64)
	var sub *ccnats.Subscription
	var err error
	switch h.mode {
	case "callback":
		sub, err = h.wc.Subscribe(topic, func(m *nats.Msg) { deliver(ctx, ch, fromNATS(m.Header, m.Data)) })
	case "chan":
		in := make(chan *nats.Msg, 4)
		if sub, err = h.wc.ChanSubscribe(topic, in); err == nil {
			h.pump(ctx, in, ch)
		}
	case "sync":
		if sub, err = h.wc.SubscribeSync(topic); err == nil {
			h.poll(ctx, ch, func() ([]*nats.Msg, error) {
				m, err := sub.NextMsg(100 * time.Millisecond)
				if err != nil {
					return nil, err
				}
				return []*nats.Msg{m}, nil
			})
		}
	}
	if err != nil {
		return nil, err
	}
	// Unsubscribe first, so that a handler waiting on a full channel ends.
	h.fs = append([]func(){func() { _ = sub.Unsubscribe() }}, h.fs...)
	return ch, h.wc.FlushWithContext(ctx)
}

func (h *wrapHarness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	ch := make(chan claimchecktest.Message, 64)
	sub, err := h.raw.Subscribe(topic, func(m *nats.Msg) { deliver(ctx, ch, fromNATS(m.Header, m.Data)) })
	if err != nil {
		return nil, err
	}
	h.add(func() { _ = sub.Unsubscribe() })
	return ch, h.raw.FlushWithContext(ctx)
}

type legacyHarness struct {
	loops
	js   *ccnats.JetStreamContext
	raw  nats.JetStreamContext
	mode string
}

func (h *legacyHarness) stream(topic string) error {
	_, err := h.raw.AddStream(&nats.StreamConfig{Name: topic, Subjects: []string{topic}, Storage: nats.MemoryStorage})
	if errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
		return nil
	}
	return err
}

func (h *legacyHarness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	if err := h.stream(topic); err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := h.js.PublishMsg(toNATS(topic, m)); err != nil {
			return err
		}
	}
	return nil
}

func (h *legacyHarness) PublishRaw(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	if err := h.stream(topic); err != nil {
		return err
	}
	for _, m := range msgs {
		if _, err := h.raw.PublishMsg(toNATS(topic, m), nats.Context(ctx)); err != nil {
			return err
		}
	}
	return nil
}

func (h *legacyHarness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	if err := h.stream(topic); err != nil {
		return nil, err
	}
	ch := make(chan claimchecktest.Message, 64)
	opts := []nats.SubOpt{nats.Durable("decorated"), nats.DeliverAll(), nats.AckExplicit(), nats.BindStream(topic)}
	var sub *ccnats.Subscription
	var err error
	switch h.mode {
	case "push":
		// No ManualAck: nats.go acknowledges what the callback handled.
		sub, err = h.js.Subscribe(topic, func(m *nats.Msg) { deliver(ctx, ch, fromNATS(m.Header, m.Data)) }, opts...)
	case "sync":
		if sub, err = h.js.SubscribeSync(topic, opts...); err == nil {
			h.poll(ctx, ch, func() ([]*nats.Msg, error) {
				m, err := sub.NextMsg(100 * time.Millisecond)
				if err != nil {
					return nil, err
				}
				return []*nats.Msg{m}, nil
			})
		}
	case "chan":
		in := make(chan *nats.Msg, 4)
		if sub, err = h.js.ChanSubscribe(topic, in, opts...); err == nil {
			h.pump(ctx, in, ch)
		}
	case "pull", "fetchbatch":
		if sub, err = h.js.PullSubscribe(topic, "decorated", nats.BindStream(topic)); err == nil {
			h.poll(ctx, ch, func() ([]*nats.Msg, error) {
				if h.mode == "pull" {
					return sub.Fetch(8, nats.MaxWait(200*time.Millisecond))
				}
				b, err := sub.FetchBatch(8, nats.MaxWait(200*time.Millisecond))
				if err != nil {
					return nil, err
				}
				var msgs []*nats.Msg
				for m := range b.Messages() {
					msgs = append(msgs, m)
				}
				return msgs, nil
			})
		}
	}
	if err != nil {
		return nil, err
	}
	h.fs = append([]func(){func() { _ = sub.Unsubscribe() }}, h.fs...)
	return ch, nil
}

func (h *legacyHarness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	if err := h.stream(topic); err != nil {
		return nil, err
	}
	ch := make(chan claimchecktest.Message, 64)
	sub, err := h.raw.Subscribe(topic, func(m *nats.Msg) { deliver(ctx, ch, fromNATS(m.Header, m.Data)) },
		nats.Durable("raw"), nats.DeliverAll(), nats.BindStream(topic))
	if err != nil {
		return nil, err
	}
	h.add(func() { _ = sub.Unsubscribe() })
	return ch, nil
}
