package ccsarama_test

// What only a real broker shows: these tests run on Apache Kafka
// (internal/kafkabroker) and never on kfake, which speaks the protocol but
// is not the broker users run.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkabroker"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// realKafka returns the shared Apache Kafka broker as a kafkatest.Broker.
func realKafka(t *testing.T) *kafkatest.Broker {
	t.Helper()
	b := kafkabroker.Shared(t)
	return &kafkatest.Broker{Name: kafkatest.KafkaName, Addrs: b.Addrs, Kafka: b}
}

// rawRecords reads the first n records of topic as they are on the broker,
// with franz-go, failing t if they do not come within 30 s.
func rawRecords(t *testing.T, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d raw records of %s", len(out), n, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func recordHeader(r *kgo.Record, k string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value), true
		}
	}
	return "", false
}

// TestKafkaMessageTooLarge: a default topic (message.max.bytes 1048588)
// refuses a raw 2 MiB record with MESSAGE_TOO_LARGE, the broker's own
// answer (the client's limit is raised out of the way), while the same
// record claim-checked passes and reads back byte for byte.
func TestKafkaMessageTooLarge(t *testing.T) {
	k := realKafka(t)
	topic := k.NewTopic(t, "too-large", 1, nil)
	body := random(t, 2<<20)

	raw := config()
	raw.Producer.MaxMessageBytes = 16 << 20 // sarama would refuse it itself at 1 MB
	raw.Producer.Compression = sarama.CompressionNone
	_, _, err := syncProducer(t, k.Addrs, raw).SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(body)})
	if !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Fatalf("raw 2 MiB record: %v, want the broker's MESSAGE_TOO_LARGE", err)
	}
	nothingOn(t, k.Addrs, topic)

	c, _ := newChecker(t)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(body)}); err != nil {
		t.Fatalf("claim-checked 2 MiB record: %v", err)
	}
	if r := rawRecords(t, k.Addrs, topic, 1)[0]; len(r.Value) > 1024 {
		t.Fatalf("the broker holds %d bytes for the claim-checked record", len(r.Value))
	} else if v, _ := recordHeader(r, claimcheck.HeaderVersion); v != claimcheck.ContractVersion {
		t.Fatalf("the record on the broker is not claim-checked: headers %v", r.Headers)
	}
	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-too-large", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	sameBytes(t, "rehydrated", receive(t, col.got, 1, 30*time.Second)[0].Value, body)
}

// TestKafkaCompression: with each producer compression codec, plain and
// claim-checked records reach the broker in batches of that codec and
// come back byte for byte, headers too. A compressible 3 MiB body is
// claim-checked (the policy counts the bytes the application sent, not
// what the codec makes of them), as is an incompressible one.
func TestKafkaCompression(t *testing.T) {
	k := realKafka(t)
	for _, codec := range []struct {
		name string
		c    sarama.CompressionCodec
		kgo  uint8 // the codec in the record batch's attributes
	}{
		{"gzip", sarama.CompressionGZIP, 1},
		{"snappy", sarama.CompressionSnappy, 2},
		{"lz4", sarama.CompressionLZ4, 3},
		{"zstd", sarama.CompressionZSTD, 4},
	} {
		t.Run(codec.name, func(t *testing.T) {
			topic := k.NewTopic(t, "compressed-"+codec.name, 1, nil)
			c, _ := newChecker(t)
			cfg := config()
			cfg.Producer.Compression = codec.c
			cfg.Producer.MaxMessageBytes = 4 << 20 // the broker decides, after compression
			p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
			if err != nil {
				t.Fatal(err)
			}
			bodies := [][]byte{
				bytes.Repeat([]byte("plain and compressible "), 400), // 9 KiB: plain
				random(t, 3<<20), // claim-checked
				bytes.Repeat([]byte("compressible, and claim-checked all the same "), 3<<20/45), // claim-checked
				random(t, 100<<10), // plain
			}
			claimChecked := []bool{false, true, true, false}
			for i, b := range bodies {
				m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.ByteEncoder(b),
					Headers: []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec.name)}}}
				if _, _, err := p.SendMessage(m); err != nil {
					t.Fatalf("record %d (%d bytes): %v", i, len(b), err)
				}
			}
			for i, r := range rawRecords(t, k.Addrs, topic, len(bodies)) {
				if got := r.Attrs.CompressionType(); got != codec.kgo {
					t.Errorf("record %d: batch compression %d, want %d (%s)", i, got, codec.kgo, codec.name)
				}
				_, cc := recordHeader(r, claimcheck.HeaderVersion)
				if cc != claimChecked[i] {
					t.Errorf("record %d (%d bytes): claim-checked %v, want %v", i, len(bodies[i]), cc, claimChecked[i])
				}
				if !cc && !bytes.Equal(r.Value, bodies[i]) {
					t.Errorf("plain record %d changed on the way", i)
				}
			}
			col := newCollector("a")
			runGroup(t, k.Addrs, cfg, "g-"+topic, []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
			for _, m := range receive(t, col.got, len(bodies), 30*time.Second) {
				i, _ := strconv.Atoi(string(m.Key))
				sameBytes(t, "record "+string(m.Key), m.Value, bodies[i])
				if v, _ := header(m, "codec"); v != codec.name || ccsarama.IsClaimChecked(m) {
					t.Errorf("record %d: headers %v", i, m.Headers)
				}
			}
		})
	}
}

// TestKafkaIdempotentProducer: the wrapped SyncProducer with sarama's
// idempotent producer: the broker assigns a producer id, every record
// (plain and claim-checked) is written once, in order, under it.
func TestKafkaIdempotentProducer(t *testing.T) {
	k := realKafka(t)
	topic := k.NewTopic(t, "idempotent", 1, nil)
	c, _ := newChecker(t)
	cfg := config()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	bodies := make([][]byte, n)
	for i := range bodies {
		size := 1 << 10
		if i%3 == 0 {
			size = 600 << 10 // claim-checked
		}
		bodies[i] = random(t, size)
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.ByteEncoder(bodies[i])}
		if _, off, err := p.SendMessage(m); err != nil || off != int64(i) {
			t.Fatalf("record %d: offset %d, %v", i, off, err)
		}
	}
	if hw := highWater(t, k.Addrs, topic, 0); hw != n {
		t.Fatalf("%d records on the topic, want %d", hw, n)
	}
	recs := rawRecords(t, k.Addrs, topic, n)
	pid := recs[0].ProducerID
	if pid < 0 {
		t.Fatalf("producer id %d: the broker did not see an idempotent producer", pid)
	}
	for i, r := range recs {
		if r.ProducerID != pid || string(r.Key) != strconv.Itoa(i) {
			t.Fatalf("record %d: producer id %d key %q, want %d and %d", i, r.ProducerID, r.Key, pid, i)
		}
	}
	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-idempotent", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	for i, m := range receive(t, col.got, n, 30*time.Second) {
		if string(m.Key) != strconv.Itoa(i) {
			t.Fatalf("delivery %d has key %s: out of order", i, m.Key)
		}
		sameBytes(t, "record "+string(m.Key), m.Value, bodies[i])
	}
}

// tally records what consumers deliver: per message id, how often and to
// whom, checking each body against what was sent.
type tally struct {
	t    *testing.T
	mu   sync.Mutex
	sent map[string][]byte
	seen map[string]int
	by   map[string]map[string]int // member -> id -> deliveries
}

func newTally(t *testing.T) *tally {
	return &tally{t: t, sent: map[string][]byte{}, seen: map[string]int{}, by: map[string]map[string]int{}}
}

func (tl *tally) send(id string, body []byte) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.sent[id] = body
}

func (tl *tally) deliver(member string, m *sarama.ConsumerMessage) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	id := string(m.Key)
	want, ok := tl.sent[id]
	if !ok {
		tl.t.Errorf("%s: delivered %q, which was never sent", member, id)
		return
	}
	if !bytes.Equal(m.Value, want) {
		tl.t.Errorf("%s: message %s: %d bytes, want %d (contents differ)", member, id, len(m.Value), len(want))
	}
	if ccsarama.IsClaimChecked(m) {
		tl.t.Errorf("%s: message %s reached the handler claim-checked", member, id)
	}
	tl.seen[id]++
	if tl.by[member] == nil {
		tl.by[member] = map[string]int{}
	}
	tl.by[member][id]++
}

// missing returns the ids sent and not yet delivered, and the deliveries
// beyond the first (duplicates).
func (tl *tally) missing() (missing []string, dups int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for id := range tl.sent {
		switch n := tl.seen[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			dups += n - 1
		}
	}
	return missing, dups
}

func (tl *tally) waitAll(timeout time.Duration) (dups int) {
	tl.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing, dups := tl.missing()
		if len(missing) == 0 {
			return dups
		}
		if time.Now().After(deadline) {
			tl.t.Fatalf("%d messages never delivered (lost), e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tallyHandler hands every message to a tally and marks it.
type tallyHandler struct {
	name     string
	tl       *tally
	n        atomic.Int64
	assigned atomic.Bool // the last session had partitions
}

func (h *tallyHandler) Setup(sess sarama.ConsumerGroupSession) error {
	n := 0
	for _, ps := range sess.Claims() {
		n += len(ps)
	}
	h.assigned.Store(n > 0)
	return nil
}

// waitAssigned waits until every h has partitions.
func waitAssigned(t *testing.T, hs ...*tallyHandler) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range hs {
		for !h.assigned.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("member %s has no partitions after 30s", h.name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
func (h *tallyHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *tallyHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.tl.deliver(h.name, m)
			h.n.Add(1)
			sess.MarkMessage(m, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

// produceAll sends n messages with ids id-0..id-(n-1), one in every 5
// claim-checked (400 KiB), calling between(i) before message i. A send that
// fails is sent again until it succeeds (the application's retry, which
// may duplicate a message whose first attempt the broker had written).
func produceAll(t *testing.T, p ccsarama.SyncProducer, tl *tally, topic string, n int, between func(i int)) (retried int) {
	t.Helper()
	for i := range n {
		between(i)
		id := "id-" + strconv.Itoa(i)
		size := 512
		if i%5 == 0 {
			size = 400 << 10
		}
		body := random(t, size)
		tl.send(id, body)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(body)})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %s: %v", id, err)
			}
			retried++
			time.Sleep(100 * time.Millisecond)
		}
	}
	return retried
}

// TestKafkaGroupRebalance: two members of one group share a topic's
// partitions; mid-run one leaves and a third joins, so the group
// rebalances twice while the producer sends. Every message reaches a
// handler rehydrated, both first members got partitions, and the
// duplicates a rebalance may cause (offsets not yet committed) are counted.
func TestKafkaGroupRebalance(t *testing.T) {
	k := realKafka(t)
	topic := k.NewTopic(t, "rebalance", 6, nil)
	c, _ := newChecker(t)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	tl := newTally(t)
	const group = "g-rebalance"
	a, b, d := &tallyHandler{name: "a", tl: tl}, &tallyHandler{name: "b", tl: tl}, &tallyHandler{name: "c", tl: tl}
	ga := runGroup(t, k.Addrs, cfg, group, []string{topic}, ccsarama.WrapConsumerGroupHandler(a, c))
	runGroup(t, k.Addrs, cfg, group, []string{topic}, ccsarama.WrapConsumerGroupHandler(b, c))
	const n = 240
	var aGot, bGot int64
	produceAll(t, p, tl, topic, n, func(i int) {
		switch i {
		case 0:
			waitAssigned(t, a, b) // the two share the six partitions
		case 80:
			// Both members must have had messages before the first leaves.
			deadline := time.Now().Add(30 * time.Second)
			for a.n.Load() == 0 || b.n.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the partitions were not shared: a got %d, b got %d", a.n.Load(), b.n.Load())
				}
				time.Sleep(20 * time.Millisecond)
			}
			ga.stop()
			aGot, bGot = a.n.Load(), b.n.Load()
		case 160:
			runGroup(t, k.Addrs, cfg, group, []string{topic}, ccsarama.WrapConsumerGroupHandler(d, c))
			waitAssigned(t, d)
		}
		time.Sleep(2 * time.Millisecond)
	})
	dups := tl.waitAll(60 * time.Second)
	t.Logf("%d messages: a got %d, b %d (%d before a left), c %d; duplicates (at-least-once) %d",
		n, a.n.Load(), b.n.Load(), bGot, d.n.Load(), dups)
	if a.n.Load() != aGot {
		t.Errorf("a got %d messages after it left the group", a.n.Load()-aGot)
	}
	if b.n.Load() == bGot || d.n.Load() == 0 {
		t.Errorf("after the rebalances b got %d more and c %d: the partitions were not shared again", b.n.Load()-bGot, d.n.Load())
	}
}

// TestKafkaBrokerRestart: the broker is killed (SIGKILL) while a producer
// sends and a consumer group reads, and restarted. Nothing acknowledged is
// lost: every message the producer sent reaches a handler, rehydrated.
// Sends that failed while the broker was down are sent again, and the
// group re-reads from its last committed offsets, so messages may arrive
// twice: each duplicate is counted and must be a message that was sent.
func TestKafkaBrokerRestart(t *testing.T) {
	b := kafkabroker.Start(t)
	k := &kafkatest.Broker{Name: kafkatest.KafkaName, Addrs: b.Addrs, Kafka: b}
	topic := k.NewTopic(t, "restart", 3, nil)
	c, _ := newChecker(t)
	cfg := config()
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.Timeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Net.DialTimeout = 2 * time.Second
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	tl := newTally(t)
	h := &tallyHandler{name: "consumer", tl: tl}
	runGroup(t, k.Addrs, cfg, "g-restart", []string{topic}, ccsarama.WrapConsumerGroupHandler(h, c))
	const n = 150
	var before []int64
	restarted := make(chan error, 1)
	var down time.Duration
	retried := produceAll(t, p, tl, topic, n, func(i int) {
		if i == 60 {
			// Some offsets committed first (a fresh broker creates its
			// offsets topic on the group's first request, which takes a
			// moment), so the restart shows whether commits survive.
			before = waitCommitted(t, k.Addrs, "g-restart", topic, 3, nil, 20)
			go func() { // the producer keeps sending, the group keeps reading
				start := time.Now()
				b.Kill()
				time.Sleep(time.Second)
				err := b.Relaunch()
				down = time.Since(start)
				restarted <- err
			}()
		}
		time.Sleep(5 * time.Millisecond)
	})
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	waitCommitted(t, k.Addrs, "g-restart", topic, 3, before, 0) // commits made before the kill are kept
	dups := tl.waitAll(90 * time.Second)
	t.Logf("%d messages; broker down %v; committed offsets at the kill %v, kept; %d sends retried by the application; %d deliveries, %d duplicates; lost: 0",
		n, down.Round(time.Millisecond), before, retried, h.n.Load(), dups)
	if got := h.n.Load(); got != int64(n+dups) {
		t.Fatalf("%d deliveries, want %d messages + %d duplicates", got, n, dups)
	}
}

// waitCommitted waits until the group's committed offsets of partitions
// 0..partitions-1 of topic are at least atLeast (per partition, nil for
// none) and sum to at least sum, and returns them. It fails t after 30 s:
// after a restart, that means commits acknowledged before it were lost.
func waitCommitted(t *testing.T, addrs []string, group, topic string, partitions int32, atLeast []int64, sum int64) []int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs := make([]int64, partitions)
		var total int64
		ok := true
		for p := range partitions {
			offs[p] = committed(t, addrs, group, topic, p)
			total += max(offs[p], 0)
			ok = ok && (atLeast == nil || offs[p] >= atLeast[p])
		}
		if ok && total >= sum {
			return offs
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets %v, want at least %v and %d in all", offs, atLeast, sum)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kcatMessage is one line of `kcat -C -J`.
type kcatMessage struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Headers   []string `json:"headers"` // name, value, name, value...
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
}

func (m kcatMessage) header(name string) (string, int) {
	var v string
	n := 0
	for i := 0; i+1 < len(m.Headers); i += 2 {
		if m.Headers[i] == name {
			v = m.Headers[i+1]
			n++
		}
	}
	return v, n
}

// verifyAddress fetches a stash as a consumer without claimstash would:
// by its address alone, checking the SHA-256 the address names and the
// size the header gives.
func verifyAddress(t *testing.T, c *claimcheck.Checker, address, size string, want []byte) {
	t.Helper()
	r, err := c.Engine().Open(context.Background(), address)
	if err != nil {
		t.Fatalf("fetching %s: %v", address, err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatalf("reading %s: %v", address, err)
	}
	a, err := stash.ParseAddress(address)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(sum[:]) != a.Digest {
		t.Fatalf("stash %s: SHA-256 %x does not match the address", address, sum)
	}
	if strconv.Itoa(buf.Len()) != size {
		t.Fatalf("stash %s: %d bytes, header says %s", address, buf.Len(), size)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("stash %s is not the payload sent", address)
	}
}
