package ccsarama_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/testproc"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// markFirst marks every message with the metadata that meta returns, and
// only then hands it on, so that a test that receives a message knows its
// mark (under DeleteAfterAck: the commit, and the deletes it allows) is
// done.
type markFirst struct {
	meta func() string
	got  chan *sarama.ConsumerMessage
}

func (h *markFirst) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *markFirst) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *markFirst) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			sess.MarkMessage(m, h.meta())
			h.got <- m
		case <-sess.Context().Done():
			return nil
		}
	}
}

// With DeleteAfterAck and WithCommitCheck, a commit that fails deletes
// nothing: the stashes of the marked messages stay, for whoever replays
// them, until a later commit passes them. The commits fail for real on
// Apache Kafka (metadata over the broker's offset.metadata.max.bytes, 4096
// by default) and by an injected error on kfake.
func TestDeleteAfterFailedCommit(t *testing.T) { eachKafka(t, testDeleteAfterFailedCommit) }

func testDeleteAfterFailedCommit(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "commit-fails", 1, nil)
	group := "g-" + topic
	var failing atomic.Bool
	failing.Store(true)
	meta := func() string { return "" }
	if k.Kfake != nil {
		k.Kfake.ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
			k.Kfake.KeepControl()
			if !failing.Load() {
				return nil, nil, false
			}
			req := r.(*kmsg.OffsetCommitRequest)
			resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewOffsetCommitResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewOffsetCommitResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.ErrorCode = kerr.RebalanceInProgress.Code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
	} else {
		meta = func() string {
			if failing.Load() {
				return strings.Repeat("m", 5000)
			}
			return ""
		}
	}
	cfg, admin := manualCommits(t, k.Addrs)
	c, _ := newChecker(t, claimcheck.DeleteAfterAck())
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	send := func() string {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 300<<10))}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
		a, _ := m.Value.Encode()
		return string(a)
	}
	exists := func(a string) bool {
		_, err := c.Engine().Stat(context.Background(), a)
		if err != nil && !errors.Is(err, stash.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	first := []string{send(), send()}
	h := &markFirst{meta: meta, got: make(chan *sarama.ConsumerMessage, 16)}
	runGroup(t, k.Addrs, cfg, group, []string{topic}, ccsarama.WrapConsumerGroupHandler(h, c, ccsarama.WithCommitCheck(admin, group)))
	receive(t, h.got, 2, 20*time.Second)
	if off := committed(t, k.Addrs, group, topic, 0); off >= 0 {
		t.Fatalf("the group committed offset %d: the commits were to fail", off)
	}
	for i, a := range first {
		if !exists(a) {
			t.Errorf("the stash of offset %d was deleted after a commit that failed", i)
		}
	}

	failing.Store(false)
	last := send()
	receive(t, h.got, 1, 20*time.Second)
	if off := committed(t, k.Addrs, group, topic, 0); off != 3 {
		t.Fatalf("committed offset %d, want 3", off)
	}
	for i, a := range append(first, last) {
		if exists(a) {
			t.Errorf("the stash of offset %d is still there after the commit that passed it", i)
		}
	}
}

// A commit check that never confirms (here: given another group's ID)
// deletes nothing, and keeps a bounded number of stashes waiting: past the
// bound the oldest are left to their TTL, and the logger says so.
func TestCommitCheckWrongGroup(t *testing.T) {
	ccsarama.SetMaxUnconfirmed(t, 2)
	k := startKafka(t, 1)
	const topic = "wrong-group"
	k.CreateTopic(t, topic, 1, nil)
	cfg, admin := manualCommits(t, k.Addrs)
	c, _ := newChecker(t, claimcheck.DeleteAfterAck(), claimcheck.WithMode(claimcheck.Always))
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := range 5 {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(strings.Repeat("x", i+1))}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
		a, _ := m.Value.Encode()
		addrs = append(addrs, string(a))
	}
	var log testproc.Output // written by the wrapper's goroutines
	logger := slog.New(slog.NewTextHandler(&log, nil))
	h := &markFirst{meta: func() string { return "" }, got: make(chan *sarama.ConsumerMessage, 16)}
	runGroup(t, k.Addrs, cfg, "g-real", []string{topic}, ccsarama.WrapConsumerGroupHandler(h, c,
		ccsarama.WithCommitCheck(admin, "g-not-this-one"), ccsarama.WithLogger(logger)))
	receive(t, h.got, 5, 20*time.Second)
	for i, a := range addrs {
		if _, err := c.Engine().Stat(context.Background(), a); err != nil {
			t.Errorf("the stash of offset %d: %v; want it kept, its commit never confirmed", i, err)
		}
	}
	if off := committed(t, k.Addrs, "g-real", topic, 0); off != 5 {
		t.Fatalf("the real group committed %d, want 5", off)
	}
	logged := log.String()
	for _, want := range []string{"too many stashes wait", "if this lasts, check that the commit check is given the consumer group's ID"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
}

// Under DeleteAfterAck, the group handler wrapper says on its logger that
// it cannot tell a failed commit unless WithCommitCheck is given.
func TestDeleteAfterAckWithoutCommitCheckWarns(t *testing.T) {
	c, _ := newChecker(t, claimcheck.DeleteAfterAck())
	plain, _ := newChecker(t)
	for _, tc := range []struct {
		name string
		c    *claimcheck.Checker
		opts []ccsarama.HandlerOption
		warn bool
	}{
		{"delete after ack", c, nil, true},
		{"delete after ack, commit check", c, []ccsarama.HandlerOption{ccsarama.WithCommitCheck(noOffsets{}, "g")}, false},
		{"delete after ack, nil commit check", c, []ccsarama.HandlerOption{ccsarama.WithCommitCheck(nil, "g")}, true},
		{"no delete", plain, nil, false},
	} {
		var buf bytes.Buffer
		opts := append(tc.opts, ccsarama.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		ccsarama.WrapConsumerGroupHandler(newCollector("w"), tc.c, opts...)
		if got := strings.Contains(buf.String(), "without reading the commit back"); got != tc.warn {
			t.Errorf("%s: warned %v, log %q", tc.name, got, buf.String())
		}
	}
}

type noOffsets struct{}

func (noOffsets) ListConsumerGroupOffsets(string, map[string][]int32) (*sarama.OffsetFetchResponse, error) {
	return nil, errors.New("no offsets here")
}
