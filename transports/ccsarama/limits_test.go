package ccsarama_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

const smallMaxMessage = 64 << 10

// With the threshold at a topic's lowered max.message.bytes (and sarama's
// Producer.MaxMessageBytes), no margin, a key and many headers, messages
// one byte under and exactly at the threshold are produced as they are
// (sarama does not refuse them, nor does the broker) and one byte over is
// claim-checked: the counted size is everything the record and its batch
// take, key and header framing included. Before, only the value and the
// headers' bytes counted, and sarama refused messages at the threshold.
func TestRecordSizeBoundary(t *testing.T) {
	eachKafka(t, func(t *testing.T, k *kafkatest.Broker) {
		topic := k.NewTopic(t, "limits", 1, map[string]string{"max.message.bytes": strconv.Itoa(smallMaxMessage)})
		var offloads int
		c, _ := newChecker(t, claimcheck.WithThreshold(smallMaxMessage), claimcheck.WithMargin(0),
			claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
				if ev.Op == claimcheck.OpOffload && ev.Err == nil {
					offloads++
				}
			})))
		cfg := config()
		cfg.Producer.MaxMessageBytes = smallMaxMessage
		cfg.Producer.Compression = sarama.CompressionNone
		p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
		if err != nil {
			t.Fatal(err)
		}
		shapes := []struct {
			name    string
			key     []byte
			headers int
		}{{"bare", nil, 0}, {"key and headers", bytes.Repeat([]byte("k"), 4<<10), 300}}
		var want [][]byte
		for _, s := range shapes {
			for _, delta := range []int{-1, 0, 1} {
				t.Run(fmt.Sprintf("%s/%+d", s.name, delta), func(t *testing.T) {
					m := &sarama.ProducerMessage{Topic: topic}
					if s.key != nil {
						m.Key = sarama.ByteEncoder(s.key)
					}
					for i := range s.headers {
						m.Headers = append(m.Headers, sarama.RecordHeader{Key: fmt.Appendf(nil, "h%03d", i), Value: []byte("v")})
					}
					// sarama's own count of all but the value, and the
					// batch's header.
					body := random(t, smallMaxMessage-m.ByteSize(2)-61+delta)
					m.Value = sarama.ByteEncoder(body)
					before := offloads
					if _, _, err := p.SendMessage(m); err != nil {
						t.Fatalf("%d bytes: %v", len(body), err)
					}
					if got, want := offloads > before, delta > 0; got != want {
						t.Errorf("offloaded = %v, want %v", got, want)
					}
					want = append(want, body)
				})
			}
			// What counted before, value and header bytes, at the
			// threshold: sarama refused it as too large.
			t.Run(s.name+"/old count", func(t *testing.T) {
				m := &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(s.key)}
				kv := 0
				for i := range s.headers {
					h := sarama.RecordHeader{Key: fmt.Appendf(nil, "h%03d", i), Value: []byte("v")}
					m.Headers = append(m.Headers, h)
					kv += len(h.Key) + len(h.Value)
				}
				body := random(t, smallMaxMessage-kv)
				m.Value = sarama.ByteEncoder(body)
				if _, _, err := p.SendMessage(m); err != nil {
					t.Fatalf("%d bytes: %v", len(body), err)
				}
				want = append(want, body)
			})
		}
		col := newCollector("a")
		runGroup(t, k.Addrs, cfg, "g-limits", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
		for i, m := range receive(t, col.got, len(want), 30*time.Second) {
			sameBytes(t, fmt.Sprintf("message %d", i), m.Value, want[i])
		}
	})
}

// A claim-checked message the broker refuses (its reference, here with a
// large user header, is over the topic's max.message.bytes) comes back on
// the async producer's Errors as the caller sent it, body and headers,
// with sarama's too-large error; its stash is left to its TTL. A message
// sent after it, and its Metadata, arrive on Successes as sent.
func TestAsyncRefusedReferenceIsReportedAsSent(t *testing.T) {
	eachKafka(t, func(t *testing.T, k *kafkatest.Broker) {
		topic := k.NewTopic(t, "refused", 1, map[string]string{"max.message.bytes": "4096"})
		c, _ := newChecker(t)
		cfg := config()
		cfg.Producer.Retry.Max = 0
		p := asyncProducer(t, k.Addrs, cfg, c)
		body, big := random(t, 300<<10), bytes.Repeat([]byte("x"), 8<<10)
		refused := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body),
			Headers: []sarama.RecordHeader{{Key: []byte("big"), Value: big}}, Metadata: "refused"}
		ok := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 300<<10)), Metadata: "ok"}
		p.Input() <- refused
		var pe *sarama.ProducerError
		select {
		case pe = <-p.Errors():
		case s := <-p.Successes():
			t.Fatalf("the oversized reference was produced (metadata %v)", s.Metadata)
		case <-time.After(30 * time.Second):
			t.Fatal("no error for the oversized reference")
		}
		if !errors.Is(pe.Err, sarama.ErrMessageSizeTooLarge) {
			t.Errorf("error = %v, want the broker's MESSAGE_TOO_LARGE", pe.Err)
		}
		if pe.Msg != refused || pe.Msg.Metadata != "refused" {
			t.Fatalf("Errors gave %p (metadata %v), not the message sent", pe.Msg, pe.Msg.Metadata)
		}
		if v, err := pe.Msg.Value.Encode(); err != nil || !bytes.Equal(v, body) {
			t.Errorf("the reported message's value is %d bytes, not the %d-byte body sent", len(v), len(body))
		}
		if len(pe.Msg.Headers) != 1 || string(pe.Msg.Headers[0].Key) != "big" || !bytes.Equal(pe.Msg.Headers[0].Value, big) {
			t.Errorf("the reported message's headers are not those sent: %d headers", len(pe.Msg.Headers))
		}
		p.Input() <- ok
		select {
		case s := <-p.Successes():
			if s != ok || s.Metadata != "ok" {
				t.Errorf("Successes gave metadata %v, want ok", s.Metadata)
			}
		case pe := <-p.Errors():
			t.Fatalf("the second message failed: %v", pe.Err)
		case <-time.After(30 * time.Second):
			t.Fatal("no success for the second message")
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// The default threshold (256 KiB) on a topic whose max.message.bytes is
// lowered to 64 KiB: a message between the two is not claim-checked and
// the broker refuses it, and the caller of the sync producer gets the
// broker's MESSAGE_TOO_LARGE; nothing is on the topic. One over the
// threshold is claim-checked and produced.
func TestDefaultThresholdOnLoweredTopic(t *testing.T) {
	eachKafka(t, func(t *testing.T, k *kafkatest.Broker) {
		topic := k.NewTopic(t, "lowered", 1, map[string]string{"max.message.bytes": strconv.Itoa(smallMaxMessage)})
		c, _ := newChecker(t)
		cfg := config()
		cfg.Producer.Retry.Max = 0
		cfg.Producer.Compression = sarama.CompressionNone
		p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 100<<10))})
		if !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
			t.Fatalf("100 KiB on a 64 KiB topic: err = %v, want MESSAGE_TOO_LARGE", err)
		}
		nothingOn(t, k.Addrs, topic)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 300<<10))}); err != nil {
			t.Fatalf("300 KiB claim-checked: %v", err)
		}
	})
}
