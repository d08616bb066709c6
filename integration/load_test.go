package integration

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkabroker"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// The benchmark's servers live for the whole test binary: a benchmark
// function runs several times with growing b.N.
var benchKafka struct {
	once sync.Once
	kc   *kfake.Cluster
	err  error
}

func benchBrokers(b *testing.B) []string {
	benchKafka.once.Do(func() {
		benchKafka.kc, benchKafka.err = kfake.NewCluster(kfake.NumBrokers(1))
	})
	if benchKafka.err != nil {
		b.Fatalf("kfake: %v", benchKafka.err)
	}
	return benchKafka.kc.ListenAddrs()
}

func stopBenchKafka() {
	if benchKafka.kc != nil {
		benchKafka.kc.Close()
	}
}

// durations collects the claim-check time of each stash: its offload on the
// producer plus its rehydration on the consumer, keyed by address.
type durations struct {
	mu    sync.Mutex
	byAdr map[string]time.Duration
	errs  int
}

func (d *durations) Observe(_ context.Context, ev claimcheck.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ev.Err != nil {
		d.errs++
		return
	}
	if ev.Op == claimcheck.OpOffload || ev.Op == claimcheck.OpRehydrate {
		d.byAdr[ev.Address] += ev.Duration
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkKafkaS3Load is the integration load figure: b.N messages through
// the sarama async producer wrapper, Kafka and a decorated Watermill Kafka
// subscriber (4 partitions), 10% of them (1 MiB each) claim-checked through
// MinIO, the rest 1 KiB. It reports the sustained rate and, for the
// claim-checked messages, the latency claim-checking adds (offload on the
// producer plus rehydration on the consumer), and the end-to-end latency of
// both kinds under that load. See BENCHMARKS.md, "Integration load".
//
// It runs on kfake and on Apache Kafka (the shared broker of
// internal/kafkabroker), as sub-benchmarks kfake and kafka.
//
//	go test -run '^$' -bench KafkaS3Load -benchtime 20000x ./integration/
func BenchmarkKafkaS3Load(b *testing.B) {
	b.Run(kafkatest.KfakeName, func(b *testing.B) { benchKafkaS3Load(b, benchBrokers(b), watermillConsumer) })
	b.Run(kafkatest.KafkaName, func(b *testing.B) { benchKafkaS3Load(b, kafkabroker.Shared(b).Addrs, watermillConsumer) })
}

// BenchmarkKafkaS3LoadGroup is BenchmarkKafkaS3Load with a sarama consumer
// group and ccsarama.WrapConsumerGroupHandler (its default read-ahead) in
// place of the Watermill subscriber: the same producer, topic layout and
// workload, and the same figures.
//
//	go test -run '^$' -bench KafkaS3LoadGroup -benchtime 20000x ./integration/
func BenchmarkKafkaS3LoadGroup(b *testing.B) {
	b.Run(kafkatest.KfakeName, func(b *testing.B) { benchKafkaS3Load(b, benchBrokers(b), groupConsumer) })
	b.Run(kafkatest.KafkaName, func(b *testing.B) { benchKafkaS3Load(b, kafkabroker.Shared(b).Addrs, groupConsumer) })
}

// loadMsg is what the load benchmark's receiver needs of a message.
type loadMsg struct {
	size int
	sent string // the producer's "sent" header: UnixNano
	ack  func()
}

// A loadConsumer subscribes to topic with checker c and yields every
// message; stop ends it.
type loadConsumer func(b *testing.B, brokers []string, topic string, c *claimcheck.Checker) (msgs <-chan loadMsg, stop func())

func watermillConsumer(b *testing.B, brokers []string, topic string, c *claimcheck.Checker) (<-chan loadMsg, func()) {
	sub := newSubscriber(b, brokers, topic+"-group", c)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan loadMsg)
	go func() {
		defer close(out)
		for m := range ch {
			select {
			case out <- loadMsg{size: len(m.Payload), sent: m.Metadata.Get("sent"), ack: func() { m.Ack() }}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, func() {
		cancel()
		closeWithin(b, "subscriber", time.Minute, sub.Close)
	}
}

func groupConsumer(b *testing.B, brokers []string, topic string, c *claimcheck.Checker) (<-chan loadMsg, func()) {
	g, err := sarama.NewConsumerGroup(brokers, topic+"-group", saramaConfig())
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan loadMsg)
	h := ccsarama.WrapConsumerGroupHandler(loadHandler{out}, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				b.Errorf("consumer group: %v", err)
				return
			}
		}
	}()
	return out, func() {
		cancel()
		<-done
		closeWithin(b, "consumer group", time.Minute, g.Close)
	}
}

// loadHandler hands every message to out and marks it once the receiver
// acks it.
type loadHandler struct{ out chan<- loadMsg }

func (loadHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (loadHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h loadHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			var sent string
			for _, rh := range m.Headers {
				if rh != nil && string(rh.Key) == "sent" {
					sent = string(rh.Value)
				}
			}
			acked := make(chan struct{})
			select {
			case h.out <- loadMsg{size: len(m.Value), sent: sent, ack: func() { close(acked) }}:
			case <-sess.Context().Done():
				return nil
			}
			select {
			case <-acked:
				sess.MarkMessage(m, "")
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func benchKafkaS3Load(b *testing.B, brokers []string, consume loadConsumer) {
	const (
		every     = 10 // one message in 10 is claim-checked
		largeSize = 1 << 20
		smallSize = 1 << 10
	)
	ms3 := miniotest.Shared(b)
	e := &env{Mode: "local", Kafka: brokers, S3: s3Server{
		Endpoint: ms3.Endpoint, AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey, Region: miniotest.Region,
	}}
	topic, bucket := uniqueName("load"), uniqueName("load")
	createTopic(b, e.Kafka, topic, 4)
	e.createBucket(b, bucket)
	obs := &durations{byAdr: map[string]time.Duration{}}
	pc, _ := s3Checker(b, e, bucket, 0, claimcheck.WithObserver(obs))
	cc, _ := s3Checker(b, e, bucket, 0, claimcheck.WithObserver(obs))

	cfg := saramaConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	ap, err := sarama.NewAsyncProducer(e.Kafka, cfg)
	if err != nil {
		b.Fatal(err)
	}
	prod, err := ccsarama.WrapAsyncProducer(cfg, ap, pc)
	if err != nil {
		b.Fatal(err)
	}
	var perr []error
	var pwg sync.WaitGroup
	pwg.Add(2)
	go func() {
		defer pwg.Done()
		for range prod.Successes() {
		}
	}()
	go func() {
		defer pwg.Done()
		for err := range prod.Errors() {
			perr = append(perr, err)
		}
	}()

	ch, stop := consume(b, e.Kafka, topic, cc)
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	var plainLat, ccLat []time.Duration
	received := make(chan struct{})
	go func() {
		defer close(received)
		for n := 0; n < b.N; n++ {
			m, ok := <-ch
			if !ok {
				return
			}
			sent, _ := strconv.ParseInt(m.sent, 10, 64)
			lat := time.Since(time.Unix(0, sent))
			if m.size == largeSize {
				ccLat = append(ccLat, lat)
			} else {
				plainLat = append(plainLat, lat)
			}
			m.ack()
		}
	}()

	large := make([]byte, largeSize)
	if _, err := rand.Read(large); err != nil {
		b.Fatal(err)
	}
	small := make([]byte, smallSize)
	b.SetBytes(int64((every-1)*smallSize+largeSize) / every)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		var body []byte
		if i%every == every-1 {
			body = slices.Clone(large)
		} else {
			body = slices.Clone(small)
		}
		binary.LittleEndian.PutUint64(body, uint64(i)) // unique: a new stash each time
		prod.Input() <- &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(strconv.Itoa(i)),
			Value: sarama.ByteEncoder(body),
			Headers: []sarama.RecordHeader{
				{Key: []byte("sent"), Value: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))},
			},
		}
	}
	select {
	case <-received:
	case <-time.After(10 * time.Minute):
		b.Fatalf("received %d+%d of %d messages", len(plainLat), len(ccLat), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	prod.AsyncClose()
	pwg.Wait()
	if len(perr) > 0 {
		b.Fatalf("%d sends failed, first: %v", len(perr), perr[0])
	}
	stop()
	stop = nil

	obs.mu.Lock()
	added := make([]time.Duration, 0, len(obs.byAdr))
	for _, d := range obs.byAdr {
		added = append(added, d)
	}
	errs := obs.errs
	obs.mu.Unlock()
	if errs > 0 {
		b.Fatalf("%d claim-check operations failed", errs)
	}
	if len(ccLat)+len(plainLat) != b.N {
		b.Fatalf("received %d messages, want %d", len(ccLat)+len(plainLat), b.N)
	}
	for _, s := range [][]time.Duration{added, ccLat, plainLat} {
		slices.Sort(s)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(ms(percentile(added, 0.50)), "cc-added-p50-ms")
	b.ReportMetric(ms(percentile(added, 0.99)), "cc-added-p99-ms")
	b.ReportMetric(ms(percentile(ccLat, 0.50)), "cc-e2e-p50-ms")
	b.ReportMetric(ms(percentile(ccLat, 0.99)), "cc-e2e-p99-ms")
	b.ReportMetric(ms(percentile(plainLat, 0.50)), "plain-e2e-p50-ms")
	b.ReportMetric(ms(percentile(plainLat, 0.99)), "plain-e2e-p99-ms")
}
