package ccwatermill_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// pubSubFactory makes an undecorated publisher and subscriber; group names
// the subscriber's consumer group (or durable) where the broker has them.
type pubSubFactory func(t *testing.T, group string) (message.Publisher, message.Subscriber)

// harness implements claimchecktest.Harness over any Watermill Pub/Sub.
type harness struct {
	t       *testing.T
	c       *claimcheck.Checker
	factory pubSubFactory

	mu      sync.Mutex
	pub     message.Publisher // decorated
	rawPub  message.Publisher
	closers []func() error
	wg      sync.WaitGroup
}

func newHarness(factory pubSubFactory) claimchecktest.NewHarness {
	return func(t *testing.T, c *claimcheck.Checker) claimchecktest.Harness {
		h := &harness{t: t, c: c, factory: factory}
		pub, sub := factory(t, "publisher")
		h.rawPub = pub
		h.pub = ccwatermill.NewPublisher(pub, c)
		h.closers = append(h.closers, pub.Close, sub.Close)
		return h
	}
}

func toWatermill(msgs []claimchecktest.Message) []*message.Message {
	out := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		out[i] = message.NewMessage(watermill.NewUUID(), m.Body)
		maps.Copy(out[i].Metadata, m.Headers)
	}
	return out
}

func (h *harness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	wm := toWatermill(msgs)
	for _, m := range wm {
		m.SetContext(ctx)
	}
	return h.pub.Publish(topic, wm...)
}

func (h *harness) PublishRaw(_ context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.rawPub.Publish(topic, toWatermill(msgs)...)
}

func (h *harness) subscribe(ctx context.Context, topic, group string, decorate bool) (<-chan claimchecktest.Message, error) {
	pub, sub := h.factory(h.t, group)
	if decorate {
		sub = ccwatermill.NewSubscriber(sub, h.c)
	}
	h.mu.Lock()
	h.closers = append(h.closers, pub.Close, sub.Close)
	h.mu.Unlock()
	if si, ok := sub.(message.SubscribeInitializer); ok {
		if err := si.SubscribeInitialize(topic); err != nil {
			return nil, err
		}
	}
	in, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan claimchecktest.Message, 100)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for msg := range in {
			m := claimchecktest.Message{Body: append([]byte(nil), msg.Payload...), Headers: maps.Clone(msg.Metadata)}
			msg.Ack()
			select {
			case out <- m:
			case <-ctx.Done():
			}
		}
	}()
	return out, nil
}

func (h *harness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, "decorated", true)
}

func (h *harness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, "raw", false)
}

func (h *harness) Close() error {
	h.mu.Lock()
	closers := h.closers
	h.closers = nil
	h.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	h.wg.Wait()
	return errors.Join(errs...)
}
