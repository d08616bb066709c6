package ccwatermill_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// kafkaFactory talks to an in-process kfake cluster that keeps Kafka's
// default 1 MiB message limit.
func kafkaFactory(cluster *kafkatest.Cluster) pubSubFactory {
	return func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := kafka.NewPublisher(kafka.PublisherConfig{
			Brokers:   cluster.Addrs,
			Marshaler: kafka.DefaultMarshaler{},
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := kafka.DefaultSaramaSubscriberConfig()
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Brokers:                cluster.Addrs,
			Unmarshaler:            kafka.DefaultMarshaler{},
			OverwriteSaramaConfig:  cfg,
			ConsumerGroup:          group + "-" + watermill.NewShortUUID(),
			NackResendSleep:        10 * time.Millisecond,
			InitializeTopicDetails: &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1},
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
}

func startKafka(t *testing.T) *kafkatest.Cluster {
	return kafkatest.Start(t, 1, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
}

func TestConformanceKafka(t *testing.T) {
	cluster := startKafka(t)
	claimchecktest.RunConformanceTests(t, newHarness(kafkaFactory(cluster)),
		claimchecktest.Features{MaxMessageBytes: kafkatest.DefaultMaxMessageBytes})
}

// TestKafkaLargeMessages sends messages five and more times the broker's
// limit: refused undecorated, delivered byte for byte decorated.
func TestKafkaLargeMessages(t *testing.T) {
	cluster := startKafka(t)
	pub, sub := kafkaFactory(cluster)(t, "large")
	engine, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	var counters claimcheck.Counters
	c, err := claimcheck.New(engine, claimcheck.WithObserver(&counters))
	if err != nil {
		t.Fatal(err)
	}
	dpub, dsub := ccwatermill.NewPublisher(pub, c), ccwatermill.NewSubscriber(sub, c)
	defer func() {
		if err := dpub.Close(); err != nil {
			t.Error(err)
		}
		if err := dsub.Close(); err != nil {
			t.Error(err)
		}
	}()
	const topic = "large"

	big := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16+7) // 5 MiB + 112 bytes
	if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), big)); err == nil {
		t.Fatal("the broker took a 5 MiB message undecorated; the test proves nothing")
	}

	sizes := []int{len(big), 10, 6 << 20, 100 << 10}
	var sent []*message.Message
	for i, n := range sizes {
		p := big
		if n != len(big) {
			p = bytes.Repeat([]byte{byte(i)}, n)
		}
		m := message.NewMessage(watermill.NewUUID(), p)
		m.Metadata.Set("n", string(rune('a'+i)))
		sent = append(sent, m)
	}
	want := map[string][]byte{}
	for _, m := range sent {
		want[m.UUID] = m.Payload
	}
	if err := dpub.Publish(topic, sent...); err != nil {
		t.Fatalf("decorated publish: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := dsub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for range sent {
		select {
		case m := <-ch:
			if !bytes.Equal(m.Payload, want[m.UUID]) {
				t.Errorf("message %s: %d bytes, want %d", m.UUID, len(m.Payload), len(want[m.UUID]))
			}
			if claimcheck.IsClaimChecked(claimcheck.MapHeaders(m.Metadata)) || m.Metadata.Get("n") == "" {
				t.Errorf("metadata %v", m.Metadata)
			}
			delete(want, m.UUID)
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("%d messages not received", len(want))
		}
	}
	if s := counters.Snapshot(); s.Offloaded != 2 || s.Rehydrated != 2 {
		t.Errorf("counters %+v, want the two large messages claim-checked", s)
	}
}
