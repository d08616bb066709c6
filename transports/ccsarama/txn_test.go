package ccsarama_test

import (
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// A message sent before AbortTxn belongs to the aborted transaction, as
// with sarama, even while its stash is still being written: it must never
// reach sarama after the abort, where the next transaction would commit it.
func TestAsyncAbortTxn(t *testing.T) { eachKafka(t, testAsyncAbortTxn) }

func testAsyncAbortTxn(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "txn", 1, nil)
	c, st := newChecker(t)
	st.delay = 300 * time.Millisecond // the aborted message's stash is still being written at AbortTxn
	cfg := config()
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "ccsarama-" + topic
	cfg.Net.MaxOpenRequests = 1
	p := asyncProducer(t, k.Addrs, cfg, c)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range p.Successes() {
		}
	})
	wg.Go(func() {
		for pe := range p.Errors() {
			t.Logf("produce error: %v", pe.Err)
		}
	})
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
	}()

	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("aborted"), Value: sarama.ByteEncoder(random(t, 300<<10))}
	if err := p.AbortTxn(); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("committed"), Value: sarama.StringEncoder("small")}
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}

	ccfg := config()
	ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
	col := newCollector("txn")
	runGroup(t, k.Addrs, ccfg, "g-txn", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	m := receive(t, col.got, 1, 30*time.Second)[0]
	if string(m.Key) != "committed" {
		t.Fatalf("first committed message is %q, want the committed one: the aborted message was committed", m.Key)
	}
	select {
	case m := <-col.got:
		t.Fatalf("another message was committed: %q", m.Key)
	case <-time.After(time.Second):
	}
}
