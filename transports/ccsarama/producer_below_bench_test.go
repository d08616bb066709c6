package ccsarama_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/transports/ccsarama"
)

// discardProducer is a sarama.SyncProducer that takes every message and
// sends nothing, so that what the wrapper adds is all that is measured.
type discardProducer struct {
	sarama.SyncProducer // the rest panics (nil embedded interface)
	n                   int
}

func (p *discardProducer) SendMessage(*sarama.ProducerMessage) (int32, int64, error) {
	p.n++
	return 0, int64(p.n), nil
}

// BenchmarkProducerBelowThreshold measures the sync producer wrapper's own
// cost for messages it sends as they are (1 KiB with a key and a header,
// under the threshold), without Kafka: batches of 2000 sends alternate in
// one loop between a producer that discards what it is given (raw) and the
// wrapper over it, under sarama's default Producer.MaxMessageBytes
// ("default-cap", over the checker's threshold) and under 64 KiB
// ("low-cap", below it: the message could be over the cap, and its size is
// counted). It reports each one's time per message and the heap
// allocations per message the wrapper adds (the sync wrapper's context
// for the stash write is among them).
//
//	go test -run '^$' -bench ProducerBelowThreshold -benchtime 200x ./transports/ccsarama/
func BenchmarkProducerBelowThreshold(b *testing.B) {
	const batch = 2000
	c, _ := newChecker(b)
	body := random(b, 1<<10)
	msgs := make([]*sarama.ProducerMessage, batch)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: "small", Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body),
			Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}}}
	}
	raw := &discardProducer{}
	wrap := func(maxMessageBytes int) sarama.SyncProducer {
		cfg := config()
		cfg.Producer.MaxMessageBytes = maxMessageBytes
		p, err := ccsarama.WrapSyncProducer(cfg, raw, c)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	producers := []sarama.SyncProducer{raw, wrap(sarama.NewConfig().Producer.MaxMessageBytes), wrap(64 << 10)}
	run := func(p sarama.SyncProducer) (time.Duration, uint64) {
		m0 := mallocs()
		start := time.Now()
		for _, m := range msgs {
			if _, _, err := p.SendMessage(m); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(start)
		return d, mallocs() - m0
	}
	for _, p := range producers {
		run(p)
	}
	t := make([]time.Duration, len(producers))
	a := make([]uint64, len(producers))
	b.ResetTimer()
	for i := range b.N {
		for j := range producers {
			k := (i + j) % len(producers) // rotate the order
			dk, ak := run(producers[k])
			t[k] += dk
			a[k] += ak
		}
	}
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(float64(t[0].Nanoseconds())/n, "ns/msg-raw")
	for k, name := range []string{"", "default-cap", "low-cap"} {
		if k == 0 {
			continue
		}
		b.ReportMetric(float64(t[k].Nanoseconds())/n, "ns/msg-"+name)
		b.ReportMetric((float64(a[k])-float64(a[0]))/n, "extra-allocs/msg-"+name)
	}
}
