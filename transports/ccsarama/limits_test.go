package ccsarama_test

import (
	"bytes"
	"context"
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
