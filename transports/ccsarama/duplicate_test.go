package ccsarama_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// Kafka lets a record repeat a header key. The contract's headers are read
// as their first occurrence everywhere (the read-ahead budget, the size
// check), so a repeated one cannot make a message pass with a size other
// than the one verified, and a rehydrated message keeps no copy of them.
func TestDuplicateContractHeaders(t *testing.T) { eachKafka(t, testDuplicateContractHeaders) }

func testDuplicateContractHeaders(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "dup", 1, nil)
	var mu sync.Mutex
	failed := map[string]error{}
	c, _ := newChecker(t, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
		id, _ := f.Headers.Get("id")
		mu.Lock()
		failed[id] = f.Err
		mu.Unlock()
		return nil // taken: skipped, the partition goes on
	}))
	payload := random(t, 4096)
	s, err := c.Engine().Create(context.Background(), "dup", payload)
	if err != nil {
		t.Fatal(err)
	}
	addr, real := s.Address.String(), strconv.Itoa(len(payload))
	hdr := func(kv ...string) []sarama.RecordHeader {
		var h []sarama.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			h = append(h, sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return h
	}
	v, sz := claimcheck.HeaderVersion, claimcheck.HeaderSize
	msgs := []*sarama.ProducerMessage{
		{Headers: hdr("id", "size-first-true", v, "1", sz, real, sz, "1")},
		{Headers: hdr("id", "size-first-lies", v, "1", sz, "1", sz, real)},
		{Headers: hdr("id", "version-first-2", v, "2", v, "1", sz, real)},
		{Headers: hdr("id", "version-twice", v, "1", v, "1", sz, real)},
	}
	p := syncProducer(t, k.Addrs, config())
	for _, m := range msgs {
		m.Topic, m.Value = topic, sarama.StringEncoder(addr)
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("after"), Headers: hdr("id", "after")}); err != nil {
		t.Fatal(err)
	}

	col := newCollector("dup")
	runGroup(t, k.Addrs, config(), "g-dup", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	got := map[string]*sarama.ConsumerMessage{}
	for _, m := range receive(t, col.got, 3, 30*time.Second) {
		id, _ := header(m, "id")
		got[id] = m
	}
	for _, id := range []string{"size-first-true", "version-twice"} {
		m := got[id]
		if m == nil {
			t.Errorf("%s: not delivered (failure %v)", id, failed[id])
			continue
		}
		sameBytes(t, id, m.Value, payload)
		for _, h := range m.Headers {
			if strings.HasPrefix(string(h.Key), "claimstash-") {
				t.Errorf("%s: header %s=%q left on the rehydrated message", id, h.Key, h.Value)
			}
		}
	}
	if m := got["after"]; m == nil || string(m.Value) != "after" {
		t.Errorf("the plain message after them: %v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, want := range map[string]error{"size-first-lies": stash.ErrIntegrity, "version-first-2": claimcheck.ErrUnsupportedVersion} {
		if got[id] != nil {
			t.Errorf("%s: delivered", id)
		}
		if !errors.Is(failed[id], want) {
			t.Errorf("%s: failure %v, want %v", id, failed[id], want)
		}
	}
}
