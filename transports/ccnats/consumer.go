package ccnats

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
)

// ErrTerminated marks the error of a message the JetStream decorators
// terminated because the checker decided to give up on it
// (claimcheck.Discard, under claimcheck.DiscardAfter): it will not be
// redelivered. The error also matches the cause (stash.ErrNotFound, ...).
var ErrTerminated = errors.New("ccnats: message terminated")

// consumer is the shared state of the JetStream decorators.
type consumer struct {
	cc  *claimcheck.Checker
	cfg base
}

func newConsumer(cc *claimcheck.Checker, opts []Option) *consumer {
	return &consumer{cc: cc, cfg: newBase(opts)}
}

// claimChecked reports whether cc rehydrates m (see marked), without
// allocating.
func claimChecked(cc *claimcheck.Checker, m jetstream.Msg) bool { return marked(cc, m.Headers()) }

// marked reports whether cc rehydrates a message with headers h: one in
// claimstash's contract, or, when cc writes AWS pointers, an AWS pointer
// (claimcheck.Checker.RehydrateInPlace reads both). Anything else is
// delivered as it is, so this is what keeps a pointer from reaching the
// application as if it were the payload.
func marked(cc *claimcheck.Checker, h nats.Header) bool {
	if h == nil {
		return false
	}
	return claimcheck.IsClaimChecked(Header(h)) || cc.Contract() == claimcheck.ContractAWSPointer && claimcheck.IsAWSPointer(Header(h))
}

// errHandled: the message failed and the checker's failure handler took it;
// it was Ack'ed and there is nothing to report.
var errHandled = errors.New("ccnats: handled by the failure handler")

// rehydrate returns m itself when it is not claim-checked, a rehydrated
// view of it, or, when its stash cannot be read, an error after settling m
// as the checker decided: Ack (Handled, errHandled), Term (Discard,
// ErrTerminated) or NakWithDelay (Redeliver, the checker's RetryDelay).
func (c *consumer) rehydrate(ctx context.Context, m jetstream.Msg) (jetstream.Msg, error) {
	h := Header(m.Headers())
	if !marked(c.cc, m.Headers()) {
		// Delivered as it is, counted by the checker's observer
		// (claimcheck.OpPlain).
		_, _, _ = c.cc.Rehydrate(ctx, m.Subject(), m.Data(), h)
		return m, nil
	}
	data := m.Data()
	deliveries := 0
	if md, err := m.Metadata(); err == nil {
		deliveries = int(md.NumDelivered)
	}
	addr, d, err := c.cc.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: m.Subject(), Body: &data, Headers: h, Deliveries: deliveries, Message: m})
	switch d {
	case claimcheck.Deliver:
		return &rehydratedMsg{Msg: m, data: data, address: addr, c: c}, nil
	case claimcheck.Handled:
		if aerr := m.Ack(); aerr != nil {
			return nil, fmt.Errorf("ccnats: ack of a handled message: %w", aerr)
		}
		return nil, errHandled
	case claimcheck.Discard:
		if terr := m.TermWithReason("claimstash: stash cannot be read"); terr != nil {
			return nil, errors.Join(err, fmt.Errorf("ccnats: term: %w", terr))
		}
		return nil, fmt.Errorf("%w: %w", ErrTerminated, err)
	}
	delay := c.cc.RetryDelay()
	if nerr := m.NakWithDelay(delay); nerr != nil {
		return nil, errors.Join(err, fmt.Errorf("ccnats: nak: %w", nerr))
	}
	return nil, fmt.Errorf("ccnats: redelivery in %v: %w", delay, err)
}

// rehydrateOrReport is rehydrate for the decorators: a message that is not
// delivered has been settled, and its error is logged.
func (c *consumer) rehydrateOrReport(ctx context.Context, m jetstream.Msg) (jetstream.Msg, bool) {
	r, err := c.rehydrate(ctx, m)
	if err != nil {
		if err != errHandled {
			c.cfg.logger.Error("ccnats: message not delivered to handler", "subject", m.Subject(), "err", err)
		}
		return nil, false
	}
	return r, true
}

// Rehydrate rehydrates one JetStream message, for code that handles
// messages itself. It returns m itself when it is not claim-checked, and
// otherwise a view of m whose Data is the payload and whose Headers no
// longer hold the contract (Ack, Nak, Term and Metadata still act on m).
// If the stash cannot be read, the checker decides (claimcheck.Checker.Decide)
// and Rehydrate settles m accordingly: Handled is Ack'ed and Rehydrate
// returns (nil, nil); Discard is terminated and Redeliver Nak'ed with the
// checker's RetryDelay, and Rehydrate returns the error, a
// *claimcheck.Error cause that errors.Is sees through, marked with
// ErrTerminated if m was terminated.
func Rehydrate(ctx context.Context, cc *claimcheck.Checker, m jetstream.Msg, opts ...Option) (jetstream.Msg, error) {
	if !claimChecked(cc, m) {
		// m itself, with nothing made for it; counted (claimcheck.OpPlain).
		cc.Plain(ctx, m.Subject(), len(m.Data()), Header(m.Headers()))
		return m, nil
	}
	r, err := newConsumer(cc, opts).rehydrate(ctx, m)
	if err == errHandled {
		return nil, nil
	}
	return r, err
}

// MessageHandler decorates a handler for jetstream.Consumer.Consume. A
// claim-checked message reaches next rehydrated (see Rehydrate); one whose
// stash cannot be read does not reach next: it is settled as the checker
// decides (see Rehydrate) and the error is logged (WithLogger).
func MessageHandler(cc *claimcheck.Checker, next jetstream.MessageHandler, opts ...Option) jetstream.MessageHandler {
	c := newConsumer(cc, opts)
	return func(m jetstream.Msg) {
		if !claimChecked(cc, m) {
			// The fast path: no context, no allocation.
			cc.Plain(context.Background(), m.Subject(), len(m.Data()), Header(m.Headers()))
			next(m)
			return
		}
		ctx, cancel := c.cfg.context()
		r, ok := c.rehydrateOrReport(ctx, m)
		cancel()
		if ok {
			next(r)
		}
	}
}

// Messages decorates the iterator of jetstream.Consumer.Messages: Next
// returns rehydrated messages, and settles (as the checker decides) and
// logs the ones it cannot rehydrate, moving on to the next message. A Next
// option such as jetstream.NextMaxWait applies to each message it reads.
func Messages(cc *claimcheck.Checker, it jetstream.MessagesContext, opts ...Option) jetstream.MessagesContext {
	return &messages{MessagesContext: it, c: newConsumer(cc, opts)}
}

type messages struct {
	jetstream.MessagesContext
	c *consumer
}

func (it *messages) Next(opts ...jetstream.NextOpt) (jetstream.Msg, error) {
	for {
		m, err := it.MessagesContext.Next(opts...)
		if err != nil {
			return nil, err
		}
		if !claimChecked(it.c.cc, m) {
			it.c.cc.Plain(context.Background(), m.Subject(), len(m.Data()), Header(m.Headers()))
			return m, nil
		}
		ctx, cancel := it.c.cfg.context()
		r, ok := it.c.rehydrateOrReport(ctx, m)
		cancel()
		if ok {
			return r, nil
		}
	}
}

// Batch decorates the result of jetstream.Consumer.Fetch (or FetchBytes,
// FetchNoWait): its Messages channel yields rehydrated messages, one at a
// time as they are read, and the ones that cannot be rehydrated are settled
// (as the checker decides) and logged. A goroutine does the reading; it
// ends when the fetch ends, or when ctx is done, Nak'ing what it has not
// handed out. Read the channel to its end or cancel ctx.
//
// That goroutine hands every message on, claim-checked or not: one
// goroutine hand-off per message more than reading jetstream's batch.
// Where that matters, read b.Messages() yourself and call Rehydrate on
// each message, which costs a header lookup for one that is not
// claim-checked; MessageHandler and Messages have no hand-off either.
func Batch(ctx context.Context, cc *claimcheck.Checker, b jetstream.MessageBatch, opts ...Option) jetstream.MessageBatch {
	// Three allocations per batch (this, the channel, the goroutine), none
	// per message that is not claim-checked.
	out := &batch{in: b, out: make(chan jetstream.Msg), c: consumer{cc: cc, cfg: newBase(opts)}}
	if ctx != nil {
		out.c.cfg.ctx = ctx // WithContext(ctx), without making the option
	}
	go out.run(out.c.cfg.ctx, &out.c)
	return out
}

type batch struct {
	in  jetstream.MessageBatch
	out chan jetstream.Msg
	c   consumer
}

func (b *batch) Messages() <-chan jetstream.Msg { return b.out }
func (b *batch) Error() error                   { return b.in.Error() }

func (b *batch) run(ctx context.Context, c *consumer) {
	defer close(b.out)
	in := b.in.Messages()
	for m := range in {
		if ctx.Err() != nil {
			_ = m.Nak()
			continue
		}
		r := m
		if claimChecked(c.cc, m) {
			rctx, cancel := c.cfg.context()
			rm, ok := c.rehydrateOrReport(rctx, m)
			cancel()
			if !ok {
				continue
			}
			r = rm
		} else {
			c.cc.Plain(ctx, m.Subject(), len(m.Data()), Header(m.Headers()))
		}
		select {
		case b.out <- r:
		case <-ctx.Done():
			_ = m.Nak()
		}
	}
}

// rehydratedMsg is a rehydrated view of a JetStream message: Data is the
// payload; everything else is the original message's, whose headers have
// had the contract removed in place.
type rehydratedMsg struct {
	jetstream.Msg
	data    []byte
	address string
	c       *consumer
	once    sync.Once
}

func (m *rehydratedMsg) Data() []byte { return m.data }

// Unwrap returns the message as it was received.
func (m *rehydratedMsg) Unwrap() jetstream.Msg { return m.Msg }

// Ack acknowledges the message. When it is to delete the message's stash
// (claimcheck.DeleteAfterAck), it waits for the server to confirm the ack,
// as DoubleAck does (bounded by WithContext and WithTimeout), and deletes
// the stash only then: jetstream's Ack returns once the ack is queued on
// the connection, and an ack that never reaches the server (a connection
// lost, a consumer stopped before it flushed) means a redelivery, which
// needs the stash. An ack not confirmed returns its error and keeps the
// stash.
func (m *rehydratedMsg) Ack() error {
	if m.address != "" && m.c.cc.DeletesAfterAck() {
		ctx, cancel := m.c.cfg.context()
		defer cancel()
		return m.DoubleAck(ctx)
	}
	if err := m.Msg.Ack(); err != nil {
		return err
	}
	m.acked()
	return nil
}

func (m *rehydratedMsg) DoubleAck(ctx context.Context) error {
	if err := m.Msg.DoubleAck(ctx); err != nil {
		return err
	}
	m.acked()
	return nil
}

// acked tells the checker (claimcheck.DeleteAfterAck) once.
func (m *rehydratedMsg) acked() {
	m.once.Do(func() {
		ctx, cancel := m.c.cfg.context()
		defer cancel()
		if err := m.c.cc.Acked(ctx, m.address); err != nil {
			m.c.cfg.logger.Warn("ccnats: deleting the stash of an acked message", "subject", m.Msg.Subject(), "err", err)
		}
	})
}
