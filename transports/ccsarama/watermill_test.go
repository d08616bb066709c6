package ccsarama_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/transports/ccsarama"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// keyUnmarshaler is watermill-kafka's default, plus the record key in the
// metadata, so the test can see it.
type keyUnmarshaler struct{ kafka.DefaultMarshaler }

func (u keyUnmarshaler) Unmarshal(m *sarama.ConsumerMessage) (*message.Message, error) {
	msg, err := u.DefaultMarshaler.Unmarshal(m)
	if err == nil {
		msg.Metadata.Set("kafka-key", string(m.Key))
	}
	return msg, err
}

// TestWatermillInterop: produced by the Watermill decorators over
// watermill-kafka, consumed with ccsarama, and the other way round.
func TestWatermillInterop(t *testing.T) { eachKafka(t, testWatermillInterop) }

func testWatermillInterop(t *testing.T, k *kafkatest.Broker) {
	w2s := k.NewTopic(t, "w2s", 1, nil)
	s2w := k.NewTopic(t, "s2w", 1, nil)
	c, _ := newChecker(t)
	body := random(t, 3<<20)

	t.Run("watermill to sarama", func(t *testing.T) {
		pub, err := kafka.NewPublisher(kafka.PublisherConfig{
			Brokers: k.Addrs,
			Marshaler: kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
				return m.Metadata.Get("key"), nil
			}),
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		msg := message.NewMessage(watermill.NewUUID(), body)
		msg.Metadata.Set("key", "order-7")
		msg.Metadata.Set("Trace", "x")
		if err := ccwatermill.NewPublisher(pub, c).Publish(w2s, msg); err != nil {
			t.Fatal(err)
		}
		col := newCollector("a")
		runGroup(t, k.Addrs, config(), "g-w2s", []string{w2s}, ccsarama.WrapConsumerGroupHandler(col, c))
		m := receive(t, col.got, 1, 20*time.Second)[0]
		sameBytes(t, "payload", m.Value, body)
		if string(m.Key) != "order-7" {
			t.Errorf("key %q", m.Key)
		}
		if v, _ := header(m, "Trace"); v != "x" {
			t.Errorf("Trace header %q", v)
		}
		if ccsarama.IsClaimChecked(m) {
			t.Error("still claim-checked")
		}
	})

	t.Run("sarama to watermill", func(t *testing.T) {
		cfg := config()
		p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: s2w, Key: sarama.StringEncoder("k9"), Value: sarama.ByteEncoder(body),
			Headers: []sarama.RecordHeader{{Key: []byte("Trace"), Value: []byte("y")}}}); err != nil {
			t.Fatal(err)
		}
		scfg := kafka.DefaultSaramaSubscriberConfig()
		scfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
			Brokers: k.Addrs, Unmarshaler: keyUnmarshaler{}, OverwriteSaramaConfig: scfg, ConsumerGroup: "g-s2w",
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ch, err := ccwatermill.NewSubscriber(sub, c).Subscribe(ctx, s2w)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-ch:
			m.Ack()
			sameBytes(t, "payload", m.Payload, body)
			if m.Metadata.Get("kafka-key") != "k9" || m.Metadata.Get("Trace") != "y" {
				t.Errorf("metadata %v", m.Metadata)
			}
		case <-ctx.Done():
			t.Fatal("nothing received")
		}
	})
}
