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
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// The plain consumer runs the suite too: WrapConsumer over every partition
// from the oldest offset, producing through the wrapped SyncProducer.
func TestConformancePlainConsumer(t *testing.T) {
	eachKafka(t, func(t *testing.T, k *kafkatest.Broker) {
		features := claimchecktest.Features{MaxMessageBytes: kafkatest.DefaultMaxMessageBytes, Timeout: 15 * time.Second}
		claimchecktest.RunConformanceTests(t, func(t *testing.T, c *claimcheck.Checker) claimchecktest.Harness {
			h := newSaramaHarness(k, false)(t, c).(*saramaHarness)
			return &plainHarness{saramaHarness: h}
		}, features)
	})
}

// plainHarness is saramaHarness with Subscribe and SubscribeRaw through
// plain consumers.
type plainHarness struct {
	*saramaHarness
	mu  sync.Mutex
	fns []func()
}

func (h *plainHarness) subscribe(ctx context.Context, topic string, decorate bool) (<-chan claimchecktest.Message, error) {
	h.topic(topic)
	cons, err := sarama.NewConsumer(h.k.Addrs, h.cfg)
	if err != nil {
		return nil, err
	}
	if decorate {
		cons = ccsarama.WrapConsumer(cons, h.c)
	}
	out := make(chan claimchecktest.Message, 64)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	parts, err := cons.Partitions(topic)
	if err != nil {
		cancel()
		_ = cons.Close()
		return nil, err
	}
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			cancel()
			_ = cons.Close()
			return nil, err
		}
		pcs = append(pcs, pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case out <- fromSarama(m):
					case <-ctx.Done():
					}
				case <-pc.Errors():
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	h.mu.Lock()
	h.fns = append(h.fns, func() {
		cancel()
		wg.Wait()
		for _, pc := range pcs {
			_ = pc.Close()
		}
		_ = cons.Close()
	})
	h.mu.Unlock()
	return out, nil
}

func (h *plainHarness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, true)
}

func (h *plainHarness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	return h.subscribe(ctx, topic, false)
}

func (h *plainHarness) Close() error {
	h.mu.Lock()
	fns := h.fns
	h.fns = nil
	h.mu.Unlock()
	for _, f := range fns {
		f()
	}
	return h.saramaHarness.Close()
}

// plainSetup produces msgs to a one-partition topic and returns a wrapped
// partition consumer on it from the oldest offset.
func plainSetup(t *testing.T, c *claimcheck.Checker, topic string, msgs ...*sarama.ProducerMessage) sarama.PartitionConsumer {
	t.Helper()
	k := startKafka(t, 1)
	k.CreateTopic(t, topic, 1, nil)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	cons, err := sarama.NewConsumer(k.Addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	pc, err := ccsarama.WrapConsumer(cons, c).ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func consumerError(t *testing.T, pc sarama.PartitionConsumer) *ccsarama.RehydrateError {
	t.Helper()
	select {
	case ce := <-pc.Errors():
		var re *ccsarama.RehydrateError
		if !errors.As(ce, &re) {
			t.Fatalf("error %v is not a *ccsarama.RehydrateError", ce)
		}
		return re
	case <-time.After(10 * time.Second):
		t.Fatal("no error on Errors")
		return nil
	}
}

// A stash that cannot be read for now holds the partition: the error is
// reported once, nothing behind the message is delivered, and once the
// store is back the message and the ones after it arrive in order.
func TestPlainConsumerTransientHolds(t *testing.T) {
	c, st := newChecker(t, claimcheck.WithThreshold(1<<10))
	big := random(t, 64<<10)
	pc := plainSetup(t, c, "plain-transient",
		&sarama.ProducerMessage{Topic: "plain-transient", Value: sarama.ByteEncoder(big)},
		&sarama.ProducerMessage{Topic: "plain-transient", Value: sarama.StringEncoder("small")})
	st.getFailing.Store(true)
	re := consumerError(t, pc)
	if re.Skipped || !errors.Is(re, errBackendDown) || re.Message.Offset != 0 {
		t.Fatalf("error %v (skipped %v, offset %d): want a retried backend failure at offset 0", re, re.Skipped, re.Message.Offset)
	}
	select {
	case m := <-pc.Messages():
		t.Fatalf("offset %d delivered while offset 0 could not be read", m.Offset)
	case <-time.After(500 * time.Millisecond):
	}
	st.getFailing.Store(false)
	got := receive(t, pc.Messages(), 2, 10*time.Second)
	sameBytes(t, "offset 0", got[0].Value, big)
	if got[0].Offset != 0 || string(got[1].Value) != "small" {
		t.Fatalf("got offsets %d, %d (%q)", got[0].Offset, got[1].Offset, got[1].Value)
	}
	if ccsarama.IsClaimChecked(got[0]) {
		t.Error("delivered message still claim-checked")
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
}

// A stash that is gone is retried as the checker decides (Redeliver) until
// claimcheck.DiscardAfter gives up on it: reported, skipped, and the
// partition goes on.
func TestPlainConsumerDiscardAfter(t *testing.T) {
	c, _ := newChecker(t, claimcheck.DiscardAfter(2))
	gone := &sarama.ProducerMessage{Topic: "plain-gone", Value: sarama.StringEncoder("mem://" + c.Engine().Namespace() + "/gone.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		Headers: []sarama.RecordHeader{
			{Key: []byte(claimcheck.HeaderVersion), Value: []byte(claimcheck.ContractVersion)},
			{Key: []byte(claimcheck.HeaderSize), Value: []byte("10")},
		}}
	pc := plainSetup(t, c, "plain-gone", gone, &sarama.ProducerMessage{Topic: "plain-gone", Value: sarama.StringEncoder("after")})
	if re := consumerError(t, pc); re.Skipped || !errors.Is(re, stash.ErrNotFound) {
		t.Fatalf("first attempt: %v (skipped %v): want a retried stash.ErrNotFound", re, re.Skipped)
	}
	if re := consumerError(t, pc); !re.Skipped || !errors.Is(re, stash.ErrNotFound) {
		t.Fatalf("second attempt: %v (skipped %v): want a skipped stash.ErrNotFound", re, re.Skipped)
	}
	if got := receive(t, pc.Messages(), 1, 10*time.Second); string(got[0].Value) != "after" || got[0].Offset != 1 {
		t.Fatalf("got offset %d %q, want offset 1 \"after\"", got[0].Offset, got[0].Value)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close while a message is being retried ends everything (goleak checks).
func TestPlainConsumerCloseWhileRetrying(t *testing.T) {
	c, st := newChecker(t, claimcheck.WithThreshold(1<<10))
	st.getFailing.Store(true)
	pc := plainSetup(t, c, "plain-close", &sarama.ProducerMessage{Topic: "plain-close", Value: sarama.ByteEncoder(random(t, 8<<10))})
	consumerError(t, pc)
	done := make(chan error, 1)
	go func() { done <- pc.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a message was being retried")
	}
	if _, ok := <-pc.Messages(); ok {
		t.Fatal("Messages delivered a message after Close")
	}
}
