package ccsarama_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// DeleteAfterAck cannot apply to a ConsumerInterceptor; building one says
// so on the logger instead of ignoring the option silently.
func TestDeleteAfterAckInterceptorIsNotSilent(t *testing.T) {
	engine, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts []claimcheck.Option
		warn bool
	}{{nil, false}, {[]claimcheck.Option{claimcheck.DeleteAfterAck()}, true}} {
		c, err := claimcheck.New(engine, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		ccsarama.NewConsumerInterceptor(c, ccsarama.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		if got := strings.Contains(buf.String(), "DeleteAfterAck is not applied"); got != tc.warn {
			t.Errorf("DeleteAfterAck=%v: warned %v, log %q", tc.warn, got, buf.String())
		}
	}
}

// With the checker's DeleteAfterAck, marking a rehydrated message deletes
// its stash; messages not yet marked keep theirs.
func TestDeleteAfterMark(t *testing.T) { eachKafka(t, testDeleteAfterMark) }

func testDeleteAfterMark(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "marked", 1, nil)
	c, _ := newChecker(t, claimcheck.DeleteAfterAck())
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for range 2 {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 300<<10))}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
		a, _ := m.Value.Encode()
		addrs = append(addrs, string(a))
	}
	col := newCollector("d")
	runGroup(t, k.Addrs, cfg, "g-delete", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	receive(t, col.got, 2, 20*time.Second) // the collector marks what it sends
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			_, err := c.Engine().Stat(context.Background(), a)
			if errors.Is(err, stash.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stash %s of a marked message still there (%v)", a, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// commitWatch is memstash whose Delete first asks the group coordinator
// for the committed offset of partition 0, so a test can tell whether a
// stash went before or after the offset that passes its message.
type commitWatch struct {
	*memstash.Store
	committed func() int64
	mu        sync.Mutex
	seen      []int64 // the committed offset at each Delete, in order
}

func (w *commitWatch) Delete(ctx context.Context, ns, key string) error {
	off := w.committed()
	w.mu.Lock()
	w.seen = append(w.seen, off)
	w.mu.Unlock()
	return w.Store.Delete(ctx, ns, key)
}

// With DeleteAfterAck, a marked message's stash goes only once its offset is
// committed: with sarama's auto-commit an hour away, every Delete already
// sees the offset past its message at the coordinator. Deleted at the mark,
// a consumer that died before the commit would hand the replayed message to
// the next one with its stash gone.
func TestDeleteAfterCommit(t *testing.T) { eachKafka(t, testDeleteAfterCommit) }

func testDeleteAfterCommit(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "committed", 1, nil)
	const group = "g-delete-committed"
	cfg, admin := manualCommits(t, k.Addrs)
	w := &commitWatch{Store: memstash.New(), committed: func() int64 {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
		if err != nil {
			return -2
		}
		if b := resp.GetBlock(topic, 0); b != nil {
			return b.Offset
		}
		return -3
	}}
	e, err := stash.New(stash.WithBackend(w))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := claimcheck.New(e, claimcheck.DeleteAfterAck())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	for range n {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 300<<10))}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	col := newCollector("c")
	runGroup(t, k.Addrs, cfg, group, []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	receive(t, col.got, n, 20*time.Second) // the collector marks what it sends
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		seen := slices.Clone(w.seen)
		w.mu.Unlock()
		if len(seen) == n {
			for i, off := range seen {
				if off < int64(i)+1 {
					t.Errorf("the stash of offset %d was deleted with the group's committed offset at %d: before the commit that passes it", i, off)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stashes deleted", len(seen), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
