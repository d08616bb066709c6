package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// The mixed-size workload. At scale 1 it is the run: 10,000
// messages, most of 1 to 8 KiB, one in 44 (228) from 1 MiB to 32 MiB, about
// 2 GiB in all. CLAIMSTASH_INTEGRATION_SCALE picks a fraction of it.
const (
	fullMessages = 10000
	largeEvery   = 44
	// defaultScale keeps `go test -race ./integration/...` to about a
	// minute on 2 cores: 1,000 messages, 23 of them large, about 200 MiB.
	defaultScale = 0.1
	scaleEnv     = "CLAIMSTASH_INTEGRATION_SCALE"
)

// scaledMessages is the message count of the volume run.
func scaledMessages(t testing.TB) int {
	t.Helper()
	s := defaultScale
	if v := os.Getenv(scaleEnv); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 10 {
			t.Fatalf("%s=%q: want a number in (0, 10]", scaleEnv, v)
		}
		s = f
	}
	n := int(math.Round(s * fullMessages))
	if n < 2*largeEvery {
		n = 2 * largeEvery // at least two large messages, one of them 32 MiB
	}
	return n
}

// payloadSize is the size of message i: large ones log-uniform over
// [1 MiB, 32 MiB] (the first exactly 32 MiB), small ones 1 to 8 KiB.
func payloadSize(i int) int {
	if i%largeEvery == 0 {
		j := i / largeEvery
		if j == 0 {
			return 32 << 20
		}
		frac := math.Mod(float64(j)*0.6180339887498949, 1)
		return int(math.Round(float64(1<<20) * math.Pow(32, frac)))
	}
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	return 1<<10 + r.IntN(7<<10+1)
}

// compressible reports whether message i is text (compressible) rather
// than random bytes: every other small message and every other large one,
// the first large one (32 MiB) being random.
func compressible(i int) bool {
	if i%largeEvery == 0 {
		return (i/largeEvery)%2 == 1
	}
	return i%2 == 0
}

// payload is the deterministic body of message i of run seed: random bytes
// or compressible text (see compressible), so that both the stored-as-given
// and the zstd paths of the stash are exercised.
func payload(seed uint64, i int) []byte {
	b := make([]byte, payloadSize(i))
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(i))
	if !compressible(i) {
		_, _ = rand.NewChaCha8(key).Read(b)
		return b
	}
	var block strings.Builder
	for block.Len() < 4096 {
		fmt.Fprintf(&block, "{\"run\":%d,\"message\":%d,\"line\":%d,\"text\":\"claim check me\"}\n", seed, i, block.Len())
	}
	blk := []byte(block.String())[:4096]
	for off := 0; off < len(b); off += len(blk) {
		n := copy(b[off:], blk)
		if n >= 8 {
			binary.LittleEndian.PutUint64(b[off:], uint64(off)) // no two blocks alike
		}
	}
	return b
}

// checkPayload compares got with what message i of run seed carried.
func checkPayload(seed uint64, i int, got []byte) error {
	want := payload(seed, i)
	if len(got) != len(want) {
		return fmt.Errorf("message %d: %d bytes, want %d", i, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		at := 0
		for at < len(got) && got[at] == want[at] {
			at++
		}
		return fmt.Errorf("message %d: %d bytes, first difference at byte %d", i, len(got), at)
	}
	return nil
}

// uniqueName is a bucket, topic or stream name unique to the test run.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e12)
}

// s3Checker builds a claim checker over an S3 stash in bucket, as a
// producer or consumer process would: its own client, engine and counters.
// attempts bounds the SDK's attempts per request (0: its default).
func s3Checker(t testing.TB, e *env, bucket string, attempts int, opts ...claimcheck.Option) (*claimcheck.Checker, *claimcheck.Counters) {
	t.Helper()
	store, err := s3stash.New(e.s3Client(attempts))
	if err != nil {
		t.Fatal(err)
	}
	engine, err := stash.New(stash.WithBackend(store), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	var counters claimcheck.Counters
	c, err := claimcheck.New(engine, append([]claimcheck.Option{claimcheck.WithObserver(&counters)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, &counters
}

// saramaConfig is the client config of every Kafka producer and consumer
// here. Group timeouts respect a stock broker's group.min.session.timeout.ms
// (6 s).
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "claimstash-integration"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func createTopic(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
}

// newProducer is a sarama SyncProducer wrapped by ccsarama.
func newProducer(t testing.TB, brokers []string, c *claimcheck.Checker, opts ...ccsarama.ProducerOption) ccsarama.SyncProducer {
	t.Helper()
	cfg := saramaConfig()
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("kafka producer: %v", err)
	}
	w, err := ccsarama.WrapSyncProducer(cfg, p, c, opts...)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// producerMessage is message i of a run, keyed and tagged by its index.
func producerMessage(topic string, seed uint64, i int) *sarama.ProducerMessage {
	id := strconv.Itoa(i)
	return &sarama.ProducerMessage{
		Topic: topic,
		Key:   sarama.StringEncoder(id),
		Value: sarama.ByteEncoder(payload(seed, i)),
		Headers: []sarama.RecordHeader{
			{Key: []byte("id"), Value: []byte(id)},
			{Key: []byte("producer"), Value: []byte("integration")},
		},
	}
}

// newSubscriber is a watermill-kafka subscriber in consumer group group,
// decorated with ccwatermill.
func newSubscriber(t testing.TB, brokers []string, group string, c *claimcheck.Checker) message.Subscriber {
	t.Helper()
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: saramaConfig(),
		ConsumerGroup:         group,
		NackResendSleep:       50 * time.Millisecond,
		ReconnectRetrySleep:   100 * time.Millisecond,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("watermill subscriber: %v", err)
	}
	return ccwatermill.NewSubscriber(sub, c)
}

// tally records what a consumer received: deliveries per message index,
// and every message whose payload or headers were wrong.
type tally struct {
	seed uint64
	mu   sync.Mutex
	seen map[int]int
	errs []error
	got  chan int // one send per delivery, buffered
}

func newTally(seed uint64, expect int) *tally {
	return &tally{seed: seed, seen: map[int]int{}, got: make(chan int, 4*expect+16)}
}

// check verifies one delivery and records it; it reports the message's
// index, or -1 for a message without one.
func (ta *tally) check(payload []byte, header func(string) string) int {
	id, err := strconv.Atoi(header("id"))
	if err == nil {
		err = checkPayload(ta.seed, id, payload)
	} else {
		id = -1
		err = fmt.Errorf("message without an id header (%d bytes)", len(payload))
	}
	if err == nil && header("producer") != "integration" {
		err = fmt.Errorf("message %d: producer header %q lost", id, header("producer"))
	}
	if err == nil && (header(claimcheck.HeaderVersion) != "" || header(claimcheck.HeaderSize) != "") {
		err = fmt.Errorf("message %d: contract headers delivered to the application", id)
	}
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if err != nil {
		ta.errs = append(ta.errs, err)
	}
	if id >= 0 {
		ta.seen[id]++
	}
	ta.got <- id
	return id
}

// counts returns the distinct messages received and the redeliveries.
func (ta *tally) counts() (distinct, duplicates int) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for _, n := range ta.seen {
		distinct++
		duplicates += n - 1
	}
	return distinct, duplicates
}

// waitDistinct waits until want distinct messages have arrived.
func (ta *tally) waitDistinct(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if d, _ := ta.counts(); d >= want {
			return
		}
		select {
		case <-ta.got:
		case <-deadline:
			d, dup := ta.counts()
			t.Fatalf("received %d of %d distinct messages (%d duplicates) in %v", d, want, dup, timeout)
		}
	}
}

// report fails t with the first few errors.
func (ta *tally) report(t testing.TB) {
	t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	for i, err := range ta.errs {
		if i == 10 {
			t.Errorf("... and %d more", len(ta.errs)-10)
			break
		}
		t.Error(err)
	}
}

// consume reads ch until it closes, checking and acking every message.
// stop, when it returns true for a message, makes consume return without
// acking that message (a consumer that dies mid-message).
func consume(ta *tally, ch <-chan *message.Message, stop func(id int) bool) {
	for m := range ch {
		id := ta.check(m.Payload, m.Metadata.Get)
		if stop != nil && stop(id) {
			return
		}
		m.Ack()
	}
}

// closeWithin closes c, failing t if it takes longer than d.
func closeWithin(t testing.TB, what string, d time.Duration, close func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- close() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("closing %s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("closing %s took over %v", what, d)
	}
}
