package ccsarama

import (
	"context"
	"errors"
	"sync"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

type groupHandler struct {
	h sarama.ConsumerGroupHandler
	c *claimcheck.Checker
	o *options
}

// WrapConsumerGroupHandler returns h with every claim-checked message
// rehydrated before h's ConsumeClaim sees it: h receives a claim whose
// Messages channel yields the original payloads, with the contract headers
// removed and the producer's headers and key as they were.
//
// The guarantee: h never sees a message whose stash cannot be read, so it
// cannot mark it. The checker decides what such a message means
// (claimcheck.Checker.Decide, with the *sarama.ConsumerMessage as
// Failure.Message) and the wrapper translates: Redeliver (every transient
// failure, and by default every failure) stops the claim: its Messages
// channel is closed, ConsumeClaim returns the error (sarama reports it on
// the group's Errors channel with Consumer.Return.Errors, or logs it) and
// the session ends. The committed offset of the partition never moves past
// the message, so the next session starts from it again, and retries it
// until the stash can be read or the policy decides otherwise. Handled (the
// checker's OnRehydrateFailure handler took it) and Discard
// (claimcheck.DiscardAfter) skip the message: h never sees it, and may then
// mark later ones.
//
// With the checker's claimcheck.DeleteAfterAck, a stash is deleted once h
// marks its message (MarkMessage, or MarkOffset past it) on the session it
// was given. A Kafka message is replayed by every group that reads the topic
// and after any offset reset, so use it only with one group and no resets.
//
// Rehydration runs on a goroutine per claim, one message ahead of h, in
// partition order. Options: WithTimeout, WithLogger.
func WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler, c *claimcheck.Checker, opts ...ConsumerOption) sarama.ConsumerGroupHandler {
	return &groupHandler{h: h, c: c, o: consumerOptions(opts)}
}

func (g *groupHandler) Setup(s sarama.ConsumerGroupSession) error   { return g.h.Setup(s) }
func (g *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error { return g.h.Cleanup(s) }

// claim is the user's view of a sarama claim: the same partition, with
// rehydrated messages.
type claim struct {
	sarama.ConsumerGroupClaim
	msgs chan *sarama.ConsumerMessage
}

func (c *claim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

func (g *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim) (err error) {
	cl := &claim{ConsumerGroupClaim: sc, msgs: make(chan *sarama.ConsumerMessage)}
	var acks *ackSession
	if g.c.DeletesAfterAck() {
		acks = &ackSession{ConsumerGroupSession: sess, c: g.c, o: g.o, topic: sc.Topic(), partition: sc.Partition()}
		sess = acks
	}
	ctx, cancel := context.WithCancel(sess.Context())
	stop := make(chan struct{}) // closed when h's ConsumeClaim has returned
	fail := make(chan error, 1)
	go func() {
		defer close(cl.msgs) // after fail is sent: h sees the close with the error ready
		fail <- g.forward(ctx, sc.Messages(), cl.msgs, stop, acks)
	}()
	// Deferred, so the forwarding goroutine ends even when h panics (and
	// something above recovers).
	defer func() {
		close(stop)
		cancel()
		if ferr := <-fail; ferr != nil {
			err = errors.Join(ferr, err)
		}
	}()
	return g.h.ConsumeClaim(sess, cl)
}

// forward rehydrates messages from in and sends them to out, in order,
// until in is closed, stop is closed, or a message cannot be rehydrated and
// the checker decides it is to be redelivered (then it returns the error).
func (g *groupHandler) forward(ctx context.Context, in <-chan *sarama.ConsumerMessage, out chan<- *sarama.ConsumerMessage, stop <-chan struct{}, acks *ackSession) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var m *sarama.ConsumerMessage
		var ok bool
		select {
		case m, ok = <-in:
			if !ok {
				return nil
			}
		case <-stop:
			return nil
		}
		rctx, cancel := g.o.withTimeout(ctx)
		addr, d, err := rehydrate(rctx, g.c, m)
		cancel()
		switch {
		case d != claimcheck.Deliver && ctx.Err() != nil:
			return nil // the claim is ending; the message was not delivered
		case d == claimcheck.Redeliver:
			return err
		case d != claimcheck.Deliver:
			continue // Handled or Discard: skipped
		}
		if acks != nil && addr != "" {
			acks.pending(m.Offset, addr)
		}
		select {
		case out <- m:
		case <-stop:
			return nil
		}
	}
}

// ackSession is the session the wrapped handler gets under DeleteAfterAck:
// marking a rehydrated message deletes its stash (claimcheck.Checker.Acked).
type ackSession struct {
	sarama.ConsumerGroupSession
	c         *claimcheck.Checker
	o         *options
	topic     string
	partition int32

	mu   sync.Mutex
	wait []pendingAck // in offset order
}

type pendingAck struct {
	offset  int64
	address string
}

func (a *ackSession) pending(offset int64, address string) {
	a.mu.Lock()
	a.wait = append(a.wait, pendingAck{offset, address})
	a.mu.Unlock()
}

func (a *ackSession) MarkMessage(m *sarama.ConsumerMessage, metadata string) {
	a.ConsumerGroupSession.MarkMessage(m, metadata)
	a.marked(m.Topic, m.Partition, m.Offset+1)
}

func (a *ackSession) MarkOffset(topic string, partition int32, offset int64, metadata string) {
	a.ConsumerGroupSession.MarkOffset(topic, partition, offset, metadata)
	a.marked(topic, partition, offset)
}

// marked deletes the stashes of this claim's messages below next.
func (a *ackSession) marked(topic string, partition int32, next int64) {
	if topic != a.topic || partition != a.partition {
		return
	}
	a.mu.Lock()
	i := 0
	for i < len(a.wait) && a.wait[i].offset < next {
		i++
	}
	done := a.wait[:i:i]
	a.wait = a.wait[i:]
	a.mu.Unlock()
	for _, p := range done {
		ctx, cancel := a.o.withTimeout(context.WithoutCancel(a.Context()))
		if err := a.c.Acked(ctx, p.address); err != nil {
			// The stash is left to its TTL; the checker's observer has
			// reported it.
			a.o.logger.Warn("ccsarama: deleting a marked message's stash", "topic", topic, "partition", partition, "offset", p.offset, "err", err)
		}
		cancel()
	}
}
