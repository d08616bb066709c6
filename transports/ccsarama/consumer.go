package ccsarama

import (
	"context"
	"errors"
	"strconv"
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
// Rehydration reads ahead of h: up to WithReadAhead messages of a claim
// are rehydrated at once (their stash reads overlap), within a budget of
// WithReadAheadBytes of declared payload (one message alone may exceed
// it), and they reach h one at a time in partition order. Messages that are
// not claim-checked take no part in the budget and start nothing. Options:
// WithTimeout, WithReadAhead, WithReadAheadBytes, OnConsumeError.
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

// slot is one message between the claim and h: waiting for room in the
// byte budget, rehydrating, or ready to hand on.
type slot struct {
	m       *sarama.ConsumerMessage
	cost    int64         // bytes it holds against the budget once started
	started bool          // rehydration started (or none needed)
	done    chan struct{} // closed when rehydration has ended; nil once seen, or when none was needed
	err     error         // written before done is closed
}

// forward reads messages from in, rehydrates up to readAhead of them at
// once (their declared sizes within readAheadBytes, or one alone whatever
// its size), and sends them to out in partition order, until in is closed
// and everything read has been sent, stop is closed, or a message cannot be
// rehydrated and the handler says stop (then it returns the error). A
// message is sent only after every message before it was sent or skipped,
// so h never sees, and cannot mark, anything past an unreadable stash.
func (g *groupHandler) forward(ctx context.Context, in <-chan *sarama.ConsumerMessage, out chan<- *sarama.ConsumerMessage, stop <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // rehydrations still running end early; their messages are never sent
		wg.Wait()
	}()
	ring := make([]slot, g.o.readAhead)
	var head, n, unstarted int // unstarted: the number of slots at the tail not yet started
	var inflight int64
	start := func() {
		for unstarted > 0 {
			s := &ring[(head+n-unstarted)%len(ring)]
			if inflight > 0 && inflight+s.cost > g.o.readAheadBytes {
				return
			}
			inflight += s.cost
			s.started = true
			unstarted--
			done := make(chan struct{})
			s.done = done
			wg.Add(1)
			go func(s *slot, m *sarama.ConsumerMessage) {
				defer wg.Done()
				rctx, cancel := g.o.withTimeout(ctx)
				s.err = rehydrate(rctx, g.c, m)
				cancel()
				close(done)
			}(s, s.m)
		}
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		var inC <-chan *sarama.ConsumerMessage
		if in != nil && n < len(ring) && unstarted == 0 {
			inC = in
		}
		var outC chan<- *sarama.ConsumerMessage
		var ready <-chan struct{}
		var next *sarama.ConsumerMessage
		if n > 0 && ring[head].started {
			s := &ring[head]
			if s.done != nil {
				ready = s.done
			} else if s.err != nil {
				if err := g.failed(ctx, s.m, s.err); err != nil || ctx.Err() != nil {
					return err
				}
				g.pop(ring, &head, &n, &inflight) // skipped by the handler
				start()
				continue
			} else {
				outC, next = out, s.m
			}
		} else if n == 0 && in == nil {
			return nil
		}
		select {
		case m, ok := <-inC:
			if !ok {
				in = nil
				continue
			}
			s := &ring[(head+n)%len(ring)]
			n++
			*s = slot{m: m, started: true}
			if h := ConsumerHeaders(m); claimcheck.IsClaimChecked(h) {
				s.started = false
				s.cost = declaredSize(h)
				unstarted++
				start()
			}
		case <-ready:
			ring[head].done = nil // its goroutine wrote err before closing done
		case outC <- next:
			g.pop(ring, &head, &n, &inflight)
			start()
		case <-stop:
			return nil
		}
	}
}

// pop removes the head slot and returns its bytes to the budget.
func (g *groupHandler) pop(ring []slot, head, n *int, inflight *int64) {
	*inflight -= ring[*head].cost
	ring[*head] = slot{}
	*head = (*head + 1) % len(ring)
	*n--
}

// failed applies the failure policy to m, which could not be rehydrated:
// nil skips it, an error stops the claim. When the claim is ending anyway
// (ctx done), m is dropped without a verdict: it was never delivered.
func (g *groupHandler) failed(ctx context.Context, m *sarama.ConsumerMessage, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if g.o.onConsumeError != nil {
		return g.o.onConsumeError(ctx, m, err)
	}
	return g.c.RehydrateFailed(ctx, claimcheck.Failure{
		Topic: m.Topic, Body: m.Value, Headers: ConsumerHeaders(m), Err: err, Message: m,
	})
}

// declaredSize is the size a claim-checked message says it will have once
// rehydrated, at least 1; the checker verifies it against the stash, so a
// lying header fails the message rather than overrunning the budget by more
// than the bytes the read is bounded to.
func declaredSize(h Headers) int64 {
	v, _ := h.Get(claimcheck.HeaderSize)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 1
	}
	return n
}
