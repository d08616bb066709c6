package ccsarama_test

// Run in one go, bounded (kfake keeps every record in memory):
//
//	go test -run '^$' -bench . -benchtime 25x ./transports/ccsarama/

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// BenchmarkLarge sends 4 MiB messages raw, to a topic whose limit is raised
// to 16 MiB, and claim-checked, to a topic with the default limit. It
// reports messages per second and the bytes the broker stored per message
// (and, claim-checked, the bytes the stash stored).
func BenchmarkLarge(b *testing.B) {
	const size = 4 << 20
	payload := make([]byte, size)
	copy(payload, random(b, size))
	unique := func(i int) []byte { // a new payload each time: the stash would dedupe repeats
		p := append([]byte(nil), payload...)
		binary.BigEndian.PutUint64(p, uint64(i)+uint64(time.Now().UnixNano()))
		return p
	}
	b.Run("raw-16MiB-topic", func(b *testing.B) {
		k := startKafka(b, 1)
		k.CreateTopic(b, "raw", 1, map[string]string{"max.message.bytes": "16777216"})
		cfg := config()
		cfg.Producer.MaxMessageBytes = 16 << 20
		p := syncProducer(b, k.Addrs, cfg)
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "raw", Value: sarama.ByteEncoder(unique(i))}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(k.TopicBytes(b, "raw"))/float64(b.N), "broker-B/msg")
	})
	b.Run("claimchecked-default-topic", func(b *testing.B) {
		k := startKafka(b, 1)
		k.CreateTopic(b, "cc", 1, nil)
		var counters claimcheck.Counters
		c, _ := newChecker(b, claimcheck.WithObserver(&counters))
		cfg := config()
		p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(b, k.Addrs, cfg), c)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "cc", Value: sarama.ByteEncoder(unique(i))}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(k.TopicBytes(b, "cc"))/float64(b.N), "broker-B/msg")
		b.ReportMetric(float64(counters.Snapshot().StoredBytes)/float64(b.N), "stash-B/msg")
	})
}

// BenchmarkSmallOverhead sends 1 KiB messages, under the threshold, through
// a raw sarama SyncProducer and through the wrapper, alternately on the same
// broker, and reports the wrapper's time per message as a ratio of raw's.
func BenchmarkSmallOverhead(b *testing.B) {
	k := startKafka(b, 1)
	k.CreateTopic(b, "small", 1, nil)
	c, _ := newChecker(b)
	cfg := config()
	raw := syncProducer(b, k.Addrs, cfg)
	wrapped, err := ccsarama.WrapSyncProducer(cfg, syncProducer(b, k.Addrs, cfg), c)
	if err != nil {
		b.Fatal(err)
	}
	body := random(b, 1<<10)
	send := func(p sarama.SyncProducer) time.Duration {
		start := time.Now()
		m := &sarama.ProducerMessage{Topic: "small", Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body),
			Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}}}
		if _, _, err := p.SendMessage(m); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	send(raw)
	send(wrapped)
	var tr, tw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr += send(raw)
		tw += send(wrapped)
	}
	b.StopTimer()
	b.ReportMetric(float64(tr.Nanoseconds())/float64(b.N), "raw-ns/msg")
	b.ReportMetric(float64(tw.Nanoseconds())/float64(b.N), "wrapped-ns/msg")
	b.ReportMetric(float64(tw)/float64(tr), "ratio")
}
