package ccsarama_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// flakyStore is memstash whose Put fails while failing is set, whose Get
// fails while getFailing is set, and whose Get waits for its context to end
// while getBlocking is set.
type flakyStore struct {
	*memstash.Store
	failing     atomic.Bool
	delay       time.Duration // added to every Put
	getFailing  atomic.Bool
	getBlocking atomic.Bool
	gets        atomic.Int64 // Get calls
	// getDelay, when set, is how long Get call n (from 1) waits before
	// reading; reading and maxReading count the Gets under way.
	getDelay   func(n int64) time.Duration
	reading    atomic.Int64
	maxReading atomic.Int64
	// failKey, when set, makes the first Get of that key fail with
	// errBackendDown, after its delay.
	failKey  string
	failOnce atomic.Bool
}

var errBackendDown = errors.New("test: backend down")

func (f *flakyStore) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.failing.Load() {
		return errBackendDown
	}
	return f.Store.Put(ctx, ns, key, r, size, a)
}

func (f *flakyStore) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	n := f.gets.Add(1)
	if f.getDelay != nil {
		r := f.reading.Add(1)
		defer f.reading.Add(-1)
		for {
			m := f.maxReading.Load()
			if r <= m || f.maxReading.CompareAndSwap(m, r) {
				break
			}
		}
		select {
		case <-time.After(f.getDelay(n)):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if f.failKey != "" && key == f.failKey && f.failOnce.CompareAndSwap(false, true) {
		return nil, nil, errBackendDown
	}
	if f.getBlocking.Load() {
		<-ctx.Done()
		return nil, nil, ctx.Err()
	}
	if f.getFailing.Load() {
		return nil, nil, errBackendDown
	}
	return f.Store.Get(ctx, ns, key)
}

func newChecker(t testing.TB, opts ...claimcheck.Option) (*claimcheck.Checker, *flakyStore) {
	t.Helper()
	st := &flakyStore{Store: memstash.New()}
	e, err := stash.New(stash.WithBackend(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	c, err := claimcheck.New(e, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

func startKafka(t testing.TB, brokers int) *kafkatest.Cluster {
	return kafkatest.Start(t, brokers, kfake.GroupMinSessionTimeout(100*time.Millisecond))
}

// eachKafka runs f on kfake (a cluster of the sub-test's own) and on the
// Apache Kafka broker the package's tests share, as sub-tests "kfake" and
// "kafka". On the shared broker, topics come from k.NewTopic or k.Topic.
func eachKafka(t *testing.T, f func(t *testing.T, k *kafkatest.Broker)) {
	t.Helper()
	kafkatest.Each(t, f, kfake.GroupMinSessionTimeout(100*time.Millisecond))
}

func config() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "ccsarama-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 50 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 2 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 2 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 50 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Fetch.Default = 1 << 20
	return cfg
}

func syncProducer(t testing.TB, addrs []string, cfg *sarama.Config) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// asyncProducer is a sarama async producer on addrs wrapped with c; the
// caller closes it.
func asyncProducer(t testing.TB, addrs []string, cfg *sarama.Config, c *claimcheck.Checker, opts ...ccsarama.ProducerOption) sarama.AsyncProducer {
	t.Helper()
	raw, err := sarama.NewAsyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ccsarama.WrapAsyncProducer(cfg, raw, c, opts...)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	return p
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// collector is a consumer-group handler that hands every message it sees
// to got and marks it.
type collector struct {
	name string
	got  chan *sarama.ConsumerMessage
	mu   sync.Mutex
	seen int
	// untilClosed makes ConsumeClaim ignore the session's context and
	// range over Messages.
	untilClosed bool
}

func newCollector(name string) *collector {
	return &collector{name: name, got: make(chan *sarama.ConsumerMessage, 1024)}
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if c.untilClosed {
		// The other common style: read until sarama closes the channel,
		// even after the session has ended.
		for m := range claim.Messages() {
			c.mu.Lock()
			c.seen++
			c.mu.Unlock()
			c.got <- m
			sess.MarkMessage(m, "")
		}
		return nil
	}
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			c.mu.Lock()
			c.seen++
			c.mu.Unlock()
			c.got <- m
			sess.MarkMessage(m, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (c *collector) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.seen }

// group runs a consumer group over topics with handler h until the test
// ends or stop is called; errs receives what sarama reports.
type group struct {
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	errs   chan error
	once   sync.Once
}

func runGroup(t testing.TB, addrs []string, cfg *sarama.Config, id string, topics []string, h sarama.ConsumerGroupHandler) *group {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(addrs, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{cg: cg, cancel: cancel, done: make(chan struct{}), errs: make(chan error, 64)}
	go func() {
		for err := range cg.Errors() {
			select {
			case g.errs <- err:
			default:
			}
		}
	}()
	go func() {
		defer close(g.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, topics, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				select {
				case g.errs <- err:
				default:
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(g.stop)
	return g
}

// stop leaves the group, committing what was marked.
func (g *group) stop() {
	g.once.Do(func() {
		g.cancel()
		<-g.done
		g.cg.Close()
	})
}

func receive(t testing.TB, ch <-chan *sarama.ConsumerMessage, n int, timeout time.Duration) []*sarama.ConsumerMessage {
	t.Helper()
	var out []*sarama.ConsumerMessage
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages in %v", len(out), n, timeout)
		}
	}
	return out
}

func header(m *sarama.ConsumerMessage, k string) (string, bool) {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == k {
			return string(h.Value), true
		}
	}
	return "", false
}

// nothingOn fails the test if any record was produced to partition 0 of
// topic.
func nothingOn(t testing.TB, addrs []string, topic string) {
	t.Helper()
	if hw := highWater(t, addrs, topic, 0); hw != 0 {
		t.Fatalf("%d records on topic %s, want none", hw, topic)
	}
}

// highWater returns the next offset of topic/partition: the count of
// records produced to it.
func highWater(t testing.TB, addrs []string, topic string, partition int32) int64 {
	t.Helper()
	cl, err := sarama.NewClient(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	off, err := cl.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// manualCommits returns a config whose auto-commit is an hour away, so
// that only the wrappers' own commits count, and an admin client on it,
// closed with the test.
func manualCommits(t testing.TB, addrs []string) (*sarama.Config, sarama.ClusterAdmin) {
	t.Helper()
	cfg := config()
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Hour
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return cfg, admin
}

// committed returns the group's committed offset of topic/partition (-1 for
// none).
func committed(t testing.TB, addrs []string, id, topic string, partition int32) int64 {
	t.Helper()
	adm, err := sarama.NewClusterAdmin(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	resp, err := adm.ListConsumerGroupOffsets(id, map[string][]int32{topic: {partition}})
	if err != nil {
		t.Fatal(err)
	}
	b := resp.GetBlock(topic, partition)
	if b == nil {
		return -1
	}
	return b.Offset
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d (contents differ: %v)", what, len(got), len(want), len(got) == len(want))
	}
}
