package ccsarama

import (
	"context"
	"errors"

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
// cannot mark it, and nothing after it on that partition is delivered. The
// error goes to the OnConsumeError handler, or, without one, to the
// checker's failure policy (claimcheck.OnRehydrateFailure, with the
// *sarama.ConsumerMessage as Failure.Message). By default, or when the
// handler returns an error, the claim stops: its Messages channel is closed,
// ConsumeClaim returns the error (sarama reports it on the group's Errors
// channel with Consumer.Return.Errors, or logs it) and the session ends. The
// committed offset of the partition never moves past the message, so the next
// session starts from it again, and retries it until the stash can be read or
// a handler decides otherwise. A handler returning nil skips the message:
// h never sees it, and since h may then mark later messages, the handler
// owns recording it (a dead-letter topic, say).
//
// Rehydration runs on a goroutine per claim, one message ahead of h, in
// partition order. Options: WithTimeout, OnConsumeError.
//
// The checker's DeleteAfterAck is not applied: a Kafka message is replayed
// by every group that reads the topic and after any offset reset, so
// stashes live until their TTL. A checker built with DeleteAfterAck gets a
// warning on the logger (WithLogger) when the handler is wrapped, so the
// difference is never silent.
func WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler, c *claimcheck.Checker, opts ...ConsumerOption) sarama.ConsumerGroupHandler {
	o := consumerOptions(opts)
	if c.DeletesAfterAck() {
		o.logger.Warn("ccsarama: the checker's DeleteAfterAck is not applied to Kafka consumer groups (any group or offset reset may replay a message); stashes live until their TTL")
	}
	return &groupHandler{h: h, c: c, o: o}
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
	ctx, cancel := context.WithCancel(sess.Context())
	stop := make(chan struct{}) // closed when h's ConsumeClaim has returned
	fail := make(chan error, 1)
	go func() {
		defer close(cl.msgs) // after fail is sent: h sees the close with the error ready
		fail <- g.forward(ctx, sc.Messages(), cl.msgs, stop)
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
// the handler says stop (then it returns the error).
func (g *groupHandler) forward(ctx context.Context, in <-chan *sarama.ConsumerMessage, out chan<- *sarama.ConsumerMessage, stop <-chan struct{}) error {
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
		err := rehydrate(rctx, g.c, m)
		cancel()
		if err != nil && ctx.Err() != nil {
			return nil // the claim is ending; the message was not delivered
		}
		if err != nil {
			if g.o.onConsumeError != nil {
				err = g.o.onConsumeError(ctx, m, err)
			} else {
				err = g.c.RehydrateFailed(ctx, claimcheck.Failure{
					Topic: m.Topic, Body: m.Value, Headers: ConsumerHeaders(m), Err: err, Message: m,
				})
			}
			if err != nil {
				return err
			}
			continue // skipped by the handler
		}
		select {
		case out <- m:
		case <-stop:
			return nil
		}
	}
}
