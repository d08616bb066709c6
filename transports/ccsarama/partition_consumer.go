package ccsarama

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

// Retry delays of the plain consumer wrappers for a stash that cannot be
// read for now (a store that is down): the first wait, doubled after each
// attempt up to the last.
const (
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
)

// RehydrateError is the Err of the *sarama.ConsumerError a wrapped
// PartitionConsumer sends on its Errors channel for a message it could not
// rehydrate. It unwraps to the cause (a *claimcheck.Error: errors.Is sees
// stash.ErrNotFound, claimcheck.ErrNotAllowed, ...).
type RehydrateError struct {
	// Message is the message as it came from Kafka, still claim-checked.
	Message *sarama.ConsumerMessage
	// Skipped is true when the checker gave up on the message
	// (claimcheck.Discard) and the partition went on past it; false when
	// the wrapper holds the partition and retries it (claimcheck.Redeliver).
	Skipped bool
	Err     error
}

func (e *RehydrateError) Error() string {
	what := "retrying"
	if e.Skipped {
		what = "skipped"
	}
	return fmt.Sprintf("ccsarama: offset %d %s: %v", e.Message.Offset, what, e.Err)
}

func (e *RehydrateError) Unwrap() error { return e.Err }

// consumer wraps a sarama.Consumer so that its partition consumers
// rehydrate.
type consumer struct {
	sarama.Consumer
	c    *claimcheck.Checker
	opts []ConsumerOption
}

// WrapConsumer wraps a sarama.Consumer: every PartitionConsumer made by its
// ConsumePartition is wrapped with WrapPartitionConsumer. The change to an
// existing pipeline is one line:
//
//	consumer, err := sarama.NewConsumer(addrs, cfg)
//	consumer = ccsarama.WrapConsumer(consumer, checker) // new
//
// Everything else (Topics, Partitions, Pause, Close, ...) is the wrapped
// consumer's. Options: WithTimeout, WithLogger.
func WrapConsumer(c sarama.Consumer, cc *claimcheck.Checker, opts ...ConsumerOption) sarama.Consumer {
	return &consumer{Consumer: c, c: cc, opts: opts}
}

// ConsumePartition calls the wrapped consumer's and wraps the result.
func (c *consumer) ConsumePartition(topic string, partition int32, offset int64) (sarama.PartitionConsumer, error) {
	pc, err := c.Consumer.ConsumePartition(topic, partition, offset)
	if err != nil {
		return nil, err
	}
	return WrapPartitionConsumer(pc, c.c, c.opts...), nil
}

// partitionConsumer is a sarama.PartitionConsumer whose Messages are
// rehydrated.
type partitionConsumer struct {
	sarama.PartitionConsumer
	c        *claimcheck.Checker
	o        *options
	msgs     chan *sarama.ConsumerMessage
	errs     chan *sarama.ConsumerError
	ctx      context.Context // cancelled by AsyncClose and Close
	cancel   context.CancelFunc
	stopOnce sync.Once
}

// WrapPartitionConsumer wraps pc: its Messages channel yields claim-checked
// messages rehydrated (payload restored, contract headers removed, key,
// offset and the producer's headers as they were), in partition order. A
// goroutine does the reading, one message ahead of the application; it
// ends when pc's channels close, after AsyncClose or Close, which are to be
// used as with sarama (after AsyncClose, keep reading Messages and Errors
// until they close).
//
// A message whose stash cannot be read is never delivered. The checker
// decides what it means (claimcheck.Checker.Decide, with the
// *sarama.ConsumerMessage as Failure.Message and the attempts so far as
// Failure.Deliveries) and the wrapper translates:
//   - Redeliver (every transient failure, and by default every failure)
//     holds the partition: the error is sent on Errors as a
//     *sarama.ConsumerError whose Err is a *RehydrateError, and the message
//     is retried, DefaultRetryMin doubling to DefaultRetryMax apart, and
//     delivered once its stash can be read; nothing behind it is delivered
//     meanwhile, so no offset the application commits can pass it;
//   - Discard (claimcheck.DiscardAfter: give up after that many attempts)
//     skips it, after sending the error on Errors with
//     RehydrateError.Skipped set; the error carries the message, so it can
//     be recorded or replayed;
//   - Handled (the checker's OnRehydrateFailure handler took it) skips it.
//
// Errors of the wrapped consumer pass through unchanged. With
// Consumer.Return.Errors false (sarama's default), read Errors anyway, or
// rehydrate failures that find Errors full are logged (WithLogger) instead:
// never dropped in silence.
//
// The checker's DeleteAfterAck is not applied: a plain consumer has no ack.
func WrapPartitionConsumer(pc sarama.PartitionConsumer, cc *claimcheck.Checker, opts ...ConsumerOption) sarama.PartitionConsumer {
	o := consumerOptions(opts)
	ctx, cancel := context.WithCancel(context.Background())
	p := &partitionConsumer{
		PartitionConsumer: pc, c: cc, o: o,
		msgs: make(chan *sarama.ConsumerMessage), errs: make(chan *sarama.ConsumerError, 64),
		ctx: ctx, cancel: cancel,
	}
	go p.run()
	return p
}

func (p *partitionConsumer) Messages() <-chan *sarama.ConsumerMessage { return p.msgs }
func (p *partitionConsumer) Errors() <-chan *sarama.ConsumerError     { return p.errs }

// AsyncClose stops delivery and closes the wrapped consumer asynchronously.
func (p *partitionConsumer) AsyncClose() {
	p.stopOnce.Do(p.cancel)
	p.PartitionConsumer.AsyncClose()
}

// Close stops delivery, closes the wrapped consumer and returns the errors
// not yet read, as sarama's Close does.
func (p *partitionConsumer) Close() error {
	p.AsyncClose()
	var errs sarama.ConsumerErrors
	for e := range p.errs {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// run forwards until both of the wrapped consumer's channels are closed.
// Once stopped, messages are dropped (they were not delivered, so no
// offset past them was handed out) and errors still forwarded.
func (p *partitionConsumer) run() {
	defer p.cancel()
	defer close(p.errs)
	defer close(p.msgs)
	in, inErrs := p.PartitionConsumer.Messages(), p.PartitionConsumer.Errors()
	for in != nil || inErrs != nil {
		select {
		case m, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			if p.ctx.Err() == nil {
				p.deliver(m)
			}
		case e, ok := <-inErrs:
			if !ok {
				inErrs = nil
				continue
			}
			p.errs <- e // read by the application, or by Close
		}
	}
}

// deliver rehydrates m if it is claim-checked, and sends it on.
func (p *partitionConsumer) deliver(m *sarama.ConsumerMessage) {
	if h := ConsumerHeaders(m); (claimcheck.IsClaimChecked(h) || claimcheck.IsAWSPointer(h)) && !p.rehydrate(m) {
		return
	}
	select {
	case p.msgs <- m:
	case <-p.ctx.Done():
	}
}

// rehydrate restores m in place, retrying while the checker says
// Redeliver, and reports whether m is to be delivered.
func (p *partitionConsumer) rehydrate(m *sarama.ConsumerMessage) bool {
	wait := DefaultRetryMin
	reported := false
	for attempt := 1; ; attempt++ {
		rctx, cancel := p.o.withTimeout(p.ctx)
		_, d, err := p.c.RehydrateInPlace(rctx, claimcheck.Incoming{
			Topic: m.Topic, Body: &m.Value, Headers: ConsumerHeaders(m), Deliveries: attempt, Message: m,
		})
		cancel()
		if d == claimcheck.Deliver {
			return true
		}
		if p.ctx.Err() != nil {
			return false // closing: not delivered
		}
		switch d {
		case claimcheck.Handled:
			return false // the checker's failure handler took it
		case claimcheck.Discard:
			p.report(m, &RehydrateError{Message: m, Skipped: true, Err: err})
			return false
		}
		if !reported {
			p.report(m, &RehydrateError{Message: m, Err: err})
			reported = true
		}
		select {
		case <-time.After(wait):
		case <-p.ctx.Done():
			return false
		}
		wait = min(2*wait, DefaultRetryMax)
	}
}

// report sends err on Errors, or logs it when Errors is full.
func (p *partitionConsumer) report(m *sarama.ConsumerMessage, err *RehydrateError) {
	select {
	case p.errs <- &sarama.ConsumerError{Topic: m.Topic, Partition: m.Partition, Err: err}:
	default:
		p.o.logger.Error("ccsarama: rehydrate failed", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)
	}
}
