package ccnats

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
)

// ErrTerminated marks the error of a message the JetStream decorators
// terminated (TermIfGone): it will not be redelivered. The error also
// matches the cause (stash.ErrNotFound).
var ErrTerminated = errors.New("ccnats: message terminated")

// consumer is the shared state of the JetStream decorators.
type consumer struct {
	cc  *claimcheck.Checker
	cfg consumerConfig
}

func newConsumer(cc *claimcheck.Checker, opts []ConsumerOption) *consumer {
	c := &consumer{cc: cc, cfg: consumerConfig{base: newBase(), nakDelay: DefaultNakDelay}}
	for _, o := range opts {
		o.applyConsumer(&c.cfg)
	}
	if c.cfg.onError == nil {
		l := c.cfg.logger
		c.cfg.onError = func(m jetstream.Msg, err error) {
			l.Error("ccnats: message not delivered to handler", "subject", m.Subject(), "err", err)
		}
	}
	return c
}

// rehydrate returns m itself when it is not claim-checked, a rehydrated
// view of it, or, when its stash cannot be read, an error after settling m
// (NakWithDelay, or Term under TermIfGone).
func (c *consumer) rehydrate(ctx context.Context, m jetstream.Msg) (jetstream.Msg, error) {
	h := Header(m.Headers())
	if h == nil || !claimcheck.IsClaimChecked(h) {
		return m, nil
	}
	data, addr, err := c.cc.Rehydrate(ctx, m.Subject(), m.Data(), h)
	if err == nil {
		return &rehydratedMsg{Msg: m, data: data, address: addr, c: c}, nil
	}
	herr := c.cc.RehydrateFailed(ctx, claimcheck.Failure{Topic: m.Subject(), Body: m.Data(), Headers: h, Err: err, Message: m})
	if herr == nil {
		// The checker's failure handler dealt with it.
		if aerr := m.Ack(); aerr != nil {
			return nil, errors.Join(err, fmt.Errorf("ccnats: ack of a routed message: %w", aerr))
		}
		return nil, errRouted
	}
	return nil, c.settle(m, herr)
}

// claimChecked reports whether m carries the contract, without allocating.
func claimChecked(m jetstream.Msg) bool {
	h := Header(m.Headers())
	return h != nil && claimcheck.IsClaimChecked(h)
}

// errRouted: the message failed and claimcheck.OnRehydrateFailure's handler
// took it; there is nothing to report.
var errRouted = errors.New("ccnats: routed by the failure handler")

func (c *consumer) settle(m jetstream.Msg, err error) error {
	if c.cfg.termAfter > 0 && errors.Is(err, stash.ErrNotFound) {
		md, merr := m.Metadata()
		if merr == nil && int(md.NumDelivered) >= c.cfg.termAfter {
			if terr := m.TermWithReason("claimstash: stash not found"); terr != nil {
				return errors.Join(err, fmt.Errorf("ccnats: term: %w", terr))
			}
			return fmt.Errorf("%w: %w", ErrTerminated, err)
		}
	}
	if nerr := m.NakWithDelay(c.cfg.nakDelay); nerr != nil {
		return errors.Join(err, fmt.Errorf("ccnats: nak: %w", nerr))
	}
	return fmt.Errorf("ccnats: redelivery in %v: %w", c.cfg.nakDelay, err)
}

func (c *consumer) rehydrateOrReport(ctx context.Context, m jetstream.Msg) (jetstream.Msg, bool) {
	r, err := c.rehydrate(ctx, m)
	if err != nil {
		if err != errRouted {
			c.cfg.onError(m, err)
		}
		return nil, false
	}
	return r, true
}

// Rehydrate rehydrates one JetStream message, for code that handles
// messages itself. It returns m itself when it is not claim-checked, and
// otherwise a view of m whose Data is the payload and whose Headers no
// longer hold the contract (Ack, Nak, Term and Metadata still act on m).
// If the stash cannot be read, the checker's failure policy
// (claimcheck.OnRehydrateFailure) decides: a handler that takes the message
// gets it Ack'ed, and Rehydrate returns (nil, nil); otherwise Rehydrate
// settles m (NakWithDelay, or Term under TermIfGone) and returns the
// error, a *claimcheck.Error cause that errors.Is sees through, marked
// with ErrTerminated if m was terminated. OnConsumeError is not called.
func Rehydrate(ctx context.Context, cc *claimcheck.Checker, m jetstream.Msg, opts ...ConsumerOption) (jetstream.Msg, error) {
	r, err := newConsumer(cc, opts).rehydrate(ctx, m)
	if err == errRouted {
		return nil, nil
	}
	return r, err
}

// MessageHandler decorates a handler for jetstream.Consumer.Consume. A
// claim-checked message reaches next rehydrated (see Rehydrate); one whose
// stash cannot be read does not reach next: it goes to the checker's
// claimcheck.OnRehydrateFailure handler if there is one (and is Ack'ed if
// the handler takes it); otherwise it is Nak'ed with a delay (NakDelay) so
// that JetStream redelivers it later, or terminated under TermIfGone, and
// the error goes to OnConsumeError.
func MessageHandler(cc *claimcheck.Checker, next jetstream.MessageHandler, opts ...ConsumerOption) jetstream.MessageHandler {
	c := newConsumer(cc, opts)
	return func(m jetstream.Msg) {
		if !claimChecked(m) {
			next(m) // the fast path: no context, no allocation
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
// returns rehydrated messages, and settles and reports (OnConsumeError) the
// ones it cannot rehydrate, moving on to the next message. A Next option
// such as jetstream.NextMaxWait applies to each message it reads.
func Messages(cc *claimcheck.Checker, it jetstream.MessagesContext, opts ...ConsumerOption) jetstream.MessagesContext {
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
		if !claimChecked(m) {
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
// and reported (OnConsumeError). A goroutine does the reading; it ends when
// the fetch ends, or when ctx is done, Nak'ing what it has not handed out.
// Read the channel to its end or cancel ctx.
func Batch(ctx context.Context, cc *claimcheck.Checker, b jetstream.MessageBatch, opts ...ConsumerOption) jetstream.MessageBatch {
	c := newConsumer(cc, append(opts, WithContext(ctx)))
	out := &batch{in: b, out: make(chan jetstream.Msg)}
	go out.run(ctx, c)
	return out
}

type batch struct {
	in  jetstream.MessageBatch
	out chan jetstream.Msg
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
		if claimChecked(m) {
			rctx, cancel := c.cfg.context()
			rm, ok := c.rehydrateOrReport(rctx, m)
			cancel()
			if !ok {
				continue
			}
			r = rm
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

func (m *rehydratedMsg) Ack() error {
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
			m.c.cfg.onError(m.Msg, fmt.Errorf("ccnats: after ack: %w", err))
		}
	})
}
