package ccsarama_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/transports/ccsarama"
)

// BenchmarkBelowThreshold measures the group handler wrapper's own cost
// for messages it passes through (1 KiB, not claim-checked), without Kafka:
// a goroutine (sarama's partition consumer, in a real session) fills a
// claim's channel (buffered like sarama's, 256) and a handler takes and
// marks every message, either straight from that channel (raw) or through
// the wrapper. Batches of 2000 messages alternate between the two in one
// loop; it reports each one's time per message, the median over pairs of
// batches of the wrapper's over raw's ("ratio"; target <= 1.02) and the
// heap allocations per message the wrapper adds ("extra-allocs/msg";
// target 0).
//
//	go test -run '^$' -bench BelowThreshold -benchtime 200x ./transports/ccsarama/
func BenchmarkBelowThreshold(b *testing.B) {
	const batch = 2000
	c, _ := newChecker(b)
	body := random(b, 1<<10)
	msgs := make([]*sarama.ConsumerMessage, batch)
	for i := range msgs {
		msgs[i] = &sarama.ConsumerMessage{Topic: "small", Offset: int64(i), Value: body,
			Headers: []*sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}}}
	}
	raw := &takeHandler{}
	wrapped := ccsarama.WrapConsumerGroupHandler(raw, c)
	sess := &benchSession{ctx: context.Background()}
	run := func(h sarama.ConsumerGroupHandler) (time.Duration, uint64) {
		cl := &benchClaim{msgs: make(chan *sarama.ConsumerMessage, 256)}
		raw.want = batch
		m0 := mallocs()
		start := time.Now()
		go func() {
			for _, m := range msgs {
				cl.msgs <- m
			}
			close(cl.msgs)
		}()
		if err := h.ConsumeClaim(sess, cl); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if raw.got != batch {
			b.Fatalf("%d of %d messages", raw.got, batch)
		}
		return d, mallocs() - m0
	}
	run(raw)
	run(wrapped)
	var tRaw, tWrapped time.Duration
	var aRaw, aWrapped uint64
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		var dr, dw time.Duration
		var ar, aw uint64
		if i%2 == 0 {
			dr, ar = run(raw)
			dw, aw = run(wrapped)
		} else {
			dw, aw = run(wrapped)
			dr, ar = run(raw)
		}
		tRaw += dr
		tWrapped += dw
		aRaw += ar
		aWrapped += aw
		ratios = append(ratios, float64(dw)/float64(dr))
	}
	b.StopTimer()
	n := float64(b.N * batch)
	slices.Sort(ratios)
	b.ReportMetric(float64(tRaw.Nanoseconds())/n, "ns/msg-raw")
	b.ReportMetric(float64(tWrapped.Nanoseconds())/n, "ns/msg-wrapped")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric((float64(aWrapped)-float64(aRaw))/n, "extra-allocs/msg")
}

// takeHandler takes and marks messages until the claim's channel closes,
// counting them.
type takeHandler struct{ want, got int }

func (*takeHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*takeHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *takeHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.got = 0
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
		h.got++
	}
	return nil
}

// benchSession and benchClaim are the parts of a session and a claim the
// wrapper and takeHandler use; anything else panics (nil embedded
// interface).
type benchSession struct {
	sarama.ConsumerGroupSession
	ctx    context.Context
	marked int64
}

func (s *benchSession) Context() context.Context                        { return s.ctx }
func (s *benchSession) MarkMessage(m *sarama.ConsumerMessage, _ string) { s.marked = m.Offset + 1 }

type benchClaim struct {
	sarama.ConsumerGroupClaim
	msgs chan *sarama.ConsumerMessage
}

func (c *benchClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }
func (c *benchClaim) Topic() string                            { return "small" }
func (c *benchClaim) Partition() int32                         { return 0 }
