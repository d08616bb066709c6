package ccsarama_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// TestConformance runs the transport suite over kfake, whose topics keep
// Kafka's default 1 MiB limit: once publishing through the wrapped
// SyncProducer, once through the wrapped AsyncProducer. Both consume through
// WrapConsumerGroupHandler; the raw views are plain sarama.
func TestConformance(t *testing.T) {
	k := startKafka(t, 1)
	features := claimchecktest.Features{MaxMessageBytes: kafkatest.DefaultMaxMessageBytes, Timeout: 15 * time.Second}
	t.Run("Sync", func(t *testing.T) {
		claimchecktest.RunConformanceTests(t, newSaramaHarness(k, false), features)
	})
	t.Run("Async", func(t *testing.T) {
		claimchecktest.RunConformanceTests(t, newSaramaHarness(k, true), features)
	})
}

// saramaHarness implements claimchecktest.Harness over one kfake cluster.
type saramaHarness struct {
	k   *kafkatest.Cluster
	c   *claimcheck.Checker
	t   *testing.T
	cfg *sarama.Config

	raw     sarama.SyncProducer // undecorated: PublishRaw
	publish func(ctx context.Context, msgs []*sarama.ProducerMessage) error
	closers []func() error

	mu     sync.Mutex
	topics map[string]bool
	groups []*group
}

func newSaramaHarness(k *kafkatest.Cluster, async bool) claimchecktest.NewHarness {
	return func(t *testing.T, c *claimcheck.Checker) claimchecktest.Harness {
		cfg := config()
		raw, err := sarama.NewSyncProducer(k.Addrs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		h := &saramaHarness{k: k, c: c, t: t, cfg: cfg, raw: raw, topics: map[string]bool{}}
		h.closers = append(h.closers, raw.Close)
		if !async {
			// The wrapper shares the raw producer: Close closes it once.
			p, err := ccsarama.WrapSyncProducer(cfg, raw, c)
			if err != nil {
				t.Fatal(err)
			}
			h.publish = p.SendMessagesContext
			return h
		}
		ap, err := sarama.NewAsyncProducer(k.Addrs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ccsarama.WrapAsyncProducer(cfg, ap, c, ccsarama.WithLanes(3))
		if err != nil {
			ap.Close()
			t.Fatal(err)
		}
		h.closers = append(h.closers, p.Close) // drains, then closes ap
		h.publish = func(ctx context.Context, msgs []*sarama.ProducerMessage) error {
			return publishAsync(ctx, p, msgs)
		}
		return h
	}
}

// publishAsync sends msgs on p's Input and waits for each to come back on
// Successes or Errors. Calls must not overlap.
func publishAsync(ctx context.Context, p sarama.AsyncProducer, msgs []*sarama.ProducerMessage) error {
	var errs []error
	sent, done := 0, 0
	for done < len(msgs) {
		var in chan<- *sarama.ProducerMessage
		var next *sarama.ProducerMessage
		if sent < len(msgs) {
			in, next = p.Input(), msgs[sent]
		}
		select {
		case in <- next:
			sent++
		case <-p.Successes():
			done++
		case pe := <-p.Errors():
			errs = append(errs, pe)
			done++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// topic creates topic on first use, with three partitions so a claim that
// stops does not stop them all.
func (h *saramaHarness) topic(topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.topics[topic] {
		h.k.CreateTopic(h.t, topic, 3, nil)
		h.topics[topic] = true
	}
}

func toSarama(topic string, msgs []claimchecktest.Message) []*sarama.ProducerMessage {
	out := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		pm := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(m.Body)}
		for k, v := range m.Headers {
			pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		out[i] = pm
	}
	return out
}

func fromSarama(m *sarama.ConsumerMessage) claimchecktest.Message {
	out := claimchecktest.Message{Body: m.Value, Headers: map[string]string{}}
	for _, r := range m.Headers {
		if r == nil {
			continue
		}
		if _, dup := out.Headers[string(r.Key)]; !dup {
			out.Headers[string(r.Key)] = string(r.Value)
		}
	}
	if out.Body == nil {
		out.Body = []byte{}
	}
	return out
}

func (h *saramaHarness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	h.topic(topic)
	return h.publish(ctx, toSarama(topic, msgs))
}

func (h *saramaHarness) PublishRaw(_ context.Context, topic string, msgs ...claimchecktest.Message) error {
	h.topic(topic)
	return h.raw.SendMessages(toSarama(topic, msgs))
}

// handoff is the application's handler: it hands each message over, then
// marks it.
type handoff struct {
	ctx context.Context
	out chan<- claimchecktest.Message
}

func (handoff) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (handoff) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h handoff) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case h.out <- fromSarama(m):
				sess.MarkMessage(m, "")
			case <-h.ctx.Done():
				return nil
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (h *saramaHarness) subscribe(ctx context.Context, topic, id string, decorate bool) (<-chan claimchecktest.Message, error) {
	h.topic(topic)
	out := make(chan claimchecktest.Message, 64)
	var handler sarama.ConsumerGroupHandler = handoff{ctx: ctx, out: out}
	if decorate {
		// The checker's failure policy decides.
		handler = ccsarama.WrapConsumerGroupHandler(handler, h.c)
	}
	g := runGroup(h.t, h.k.Addrs, h.cfg, id+"-"+topic, []string{topic}, handler)
	stop := context.AfterFunc(ctx, g.stop)
	h.mu.Lock()
	h.groups = append(h.groups, g)
	h.closers = append(h.closers, func() error { stop(); return nil })
	h.mu.Unlock()
	return out, nil
}

func (h *saramaHarness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, "decorated", true)
}

func (h *saramaHarness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, "raw", false)
}

// Close stops the groups first (they may be handing messages over), then
// the producers.
func (h *saramaHarness) Close() error {
	h.mu.Lock()
	groups, closers := h.groups, h.closers
	h.groups, h.closers = nil, nil
	h.mu.Unlock()
	for _, g := range groups {
		g.stop()
	}
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}
