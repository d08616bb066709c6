package ccsarama_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// readAheadBacklog produces n claim-checked messages (each 8 KiB, its index
// in its first bytes) to a new one-partition kfake topic, behind a store
// whose reads get slower for earlier messages (so later reads of a window
// end first), and returns the brokers, the topic and the store.
func readAheadBacklog(t *testing.T, n int) (*claimcheck.Checker, *flakyStore, []string, string) {
	c, st, addrs, topic, _ := readAheadBacklogAddrs(t, n)
	return c, st, addrs, topic
}

// readAheadBacklogAddrs is readAheadBacklog that also returns the stash
// address of each message.
func readAheadBacklogAddrs(t *testing.T, n int) (*claimcheck.Checker, *flakyStore, []string, string, []string) {
	t.Helper()
	c, st := newChecker(t, claimcheck.WithThreshold(1<<10))
	k := startKafka(t, 1)
	k.CreateTopic(t, "ahead", 1, nil)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, n)
	for i := range n {
		body := random(t, 8<<10)
		binary.BigEndian.PutUint32(body, uint32(i))
		m := &sarama.ProducerMessage{Topic: "ahead", Value: sarama.ByteEncoder(body)}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
		a, _ := m.Value.Encode()
		addrs[i] = string(a)
	}
	st.getDelay = func(call int64) time.Duration { return time.Duration(8-(call-1)%8) * 5 * time.Millisecond }
	return c, st, k.Addrs, "ahead", addrs
}

func inOrder(t *testing.T, got []*sarama.ConsumerMessage) {
	t.Helper()
	for i, m := range got {
		if m.Offset != int64(i) || len(m.Value) != 8<<10 || binary.BigEndian.Uint32(m.Value) != uint32(i) {
			t.Fatalf("message %d: offset %d, %d bytes, index %d", i, m.Offset, len(m.Value), binary.BigEndian.Uint32(m.Value))
		}
		if ccsarama.IsClaimChecked(m) {
			t.Fatalf("offset %d still claim-checked", m.Offset)
		}
	}
}

// The group handler wrapper reads up to WithReadAhead stashes at once and
// still delivers in partition order, whatever order the reads end in; with
// WithReadAhead(1) or a byte budget of two messages, no more than that are
// read at once.
func TestReadAheadGroupOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []ccsarama.HandlerOption
		wantMax int64 // reads at once: at most, and (for the default) at least 2
	}{
		{"default", nil, ccsarama.DefaultReadAhead},
		{"one", []ccsarama.HandlerOption{ccsarama.WithReadAhead(1)}, 1},
		{"two messages of bytes", []ccsarama.HandlerOption{ccsarama.WithReadAheadBytes(2 * 8 << 10)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 24
			c, st, addrs, topic := readAheadBacklog(t, n)
			col := newCollector("a")
			runGroup(t, addrs, config(), "g-ahead", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c, tc.opts...))
			inOrder(t, receive(t, col.got, n, 30*time.Second))
			max := st.maxReading.Load()
			if max > tc.wantMax || (tc.wantMax > 2 && max < 2) {
				t.Fatalf("%d reads at once, want %d at most (and, by default, several)", max, tc.wantMax)
			}
		})
	}
}

// The plain partition consumer wrapper reads ahead the same way.
func TestReadAheadPlainOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []ccsarama.PartitionOption
		wantMax int64
	}{
		{"default", nil, ccsarama.DefaultReadAhead},
		{"one", []ccsarama.PartitionOption{ccsarama.WithReadAhead(1)}, 1},
		{"two messages of bytes", []ccsarama.PartitionOption{ccsarama.WithReadAheadBytes(2 * 8 << 10)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 24
			c, st, addrs, topic := readAheadBacklog(t, n)
			cons, err := sarama.NewConsumer(addrs, config())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cons.Close() })
			pc, err := ccsarama.WrapConsumer(cons, c, tc.opts...).ConsumePartition(topic, 0, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			inOrder(t, receive(t, pc.Messages(), n, 30*time.Second))
			if err := pc.Close(); err != nil {
				t.Fatal(err)
			}
			max := st.maxReading.Load()
			if max > tc.wantMax || (tc.wantMax > 2 && max < 2) {
				t.Fatalf("%d reads at once, want %d at most (and, by default, several)", max, tc.wantMax)
			}
		})
	}
}

// A plain consumer closed while reads are ahead ends them all (goleak
// checks), delivers nothing more, and its channels close.
func TestReadAheadPlainCloseMidWindow(t *testing.T) {
	c, st, addrs, topic := readAheadBacklog(t, 16)
	st.getDelay = func(int64) time.Duration { return time.Hour } // ended by Close
	cons, err := sarama.NewConsumer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	pc, err := ccsarama.WrapConsumer(cons, c).ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.reading.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("reads did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- pc.Close() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with reads in flight")
	}
	if m, ok := <-pc.Messages(); ok {
		t.Fatalf("offset %d delivered after Close", m.Offset)
	}
}

// A stash that is gone in the middle of a window stops the claim there,
// although the reads after it end first: the handler gets the messages
// before it and nothing after, and the committed offset stays on it.
func TestReadAheadGroupStopsAtHole(t *testing.T) {
	c, _, addrs, topic, stashes := readAheadBacklogAddrs(t, 12)
	if err := c.Engine().Delete(context.Background(), stashes[3]); err != nil {
		t.Fatal(err)
	}
	col := newCollector("a")
	col.untilClosed = true
	g := runGroup(t, addrs, config(), "g-hole", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	inOrder(t, receive(t, col.got, 3, 30*time.Second))
	wantGroupError(t, g, stash.ErrNotFound)
	time.Sleep(300 * time.Millisecond) // sessions come and go; none may deliver past the hole
	g.stop()
	if len(col.got) > 0 {
		t.Fatalf("offset %d delivered past the missing stash", (<-col.got).Offset)
	}
	if off := committed(t, addrs, "g-hole", topic, 0); off != 3 {
		t.Fatalf("committed offset %d, want 3 (the missing message's)", off)
	}
}

// A read ahead that fails for now (a store that was down while messages
// before it were still undelivered) is tried again once its message is
// next, before anything is reported: the store is back, so the partition
// is delivered in order and nothing reaches Errors.
func TestReadAheadPlainRetriesAhead(t *testing.T) {
	c, st, addrs, topic, stashes := readAheadBacklogAddrs(t, 12)
	a, err := stash.ParseAddress(stashes[3])
	if err != nil {
		t.Fatal(err)
	}
	st.failKey = a.Key()                                                     // offset 3's first read fails
	st.getDelay = func(int64) time.Duration { return 50 * time.Millisecond } // while offsets 0-2 are undelivered
	cons, err := sarama.NewConsumer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	pc, err := ccsarama.WrapConsumer(cons, c).ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	inOrder(t, receive(t, pc.Messages(), 12, 30*time.Second))
	if !st.failOnce.Load() {
		t.Fatal("offset 3's read never failed")
	}
	if err := pc.Close(); err != nil {
		t.Fatalf("reported %v, want nothing (the store was back when offset 3 was next)", err)
	}
	if n := st.gets.Load(); n != 13 {
		t.Fatalf("%d reads, want 13 (offset 3 twice)", n)
	}
}

// Reads whose time does not grow with their number (a remote store's
// latency) are not paced: a backlog of two windows takes two read times,
// where paced starts (the average over the window apart) would spread the
// second window over most of a third.
func TestReadAheadUnpacedAtConstantLatency(t *testing.T) {
	const delay = 300 * time.Millisecond // long beside a loaded machine's scheduling noise
	c, st, addrs, topic := readAheadBacklog(t, 2*ccsarama.DefaultReadAhead)
	st.getDelay = func(int64) time.Duration { return delay }
	col := newCollector("a")
	runGroup(t, addrs, config(), "g-constant", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	first := receive(t, col.got, 1, 30*time.Second)
	start := time.Now()
	rest := receive(t, col.got, 2*ccsarama.DefaultReadAhead-1, 30*time.Second)
	span := time.Since(start)
	inOrder(t, append(first, rest...))
	if span > delay*3/2 {
		t.Fatalf("the second window took %v after the first message, want about %v (one read time)", span, delay)
	}
}
