package ccsarama

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
	opts []PartitionOption
}

// WrapConsumer wraps a sarama.Consumer: every PartitionConsumer made by its
// ConsumePartition is wrapped with WrapPartitionConsumer. The change to an
// existing pipeline is one line:
//
//	consumer, err := sarama.NewConsumer(addrs, cfg)
//	consumer = ccsarama.WrapConsumer(consumer, checker) // new
//
// Everything else (Topics, Partitions, Pause, Close, ...) is the wrapped
// consumer's. Options: WithTimeout, WithReadAhead, WithReadAheadBytes,
// WithLogger.
func WrapConsumer(c sarama.Consumer, cc *claimcheck.Checker, opts ...PartitionOption) sarama.Consumer {
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

	// queued counts the messages handed to the delivering goroutine and
	// not yet settled; while it is 0, the reading goroutine may send a
	// message that needs nothing straight to msgs, as nothing is ahead of
	// it.
	queued atomic.Int64
	budget budget
}

// WrapPartitionConsumer wraps pc: its Messages channel yields claim-checked
// messages rehydrated (payload restored, contract headers removed, key,
// offset and the producer's headers as they were), in partition order.
// Rehydration reads ahead of the application: up to WithReadAhead messages
// are rehydrated at once (their stash reads overlap), within a budget of
// WithReadAheadBytes of declared payload (one message alone may exceed
// it), and they are delivered one at a time in partition order. Messages
// that are not claim-checked start nothing. The wrapper's goroutines end
// when pc's channels close, after AsyncClose or Close, which are to be used
// as with sarama (after AsyncClose, keep reading Messages and Errors until
// they close).
//
// A message whose stash cannot be read is never delivered, nor is anything
// after it until it is settled. The checker decides what it means
// (claimcheck.Checker.Decide, with the *sarama.ConsumerMessage as
// Failure.Message and the attempts so far as Failure.Deliveries) and the
// wrapper translates:
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
// Options: WithTimeout, WithReadAhead, WithReadAheadBytes, WithLogger.
func WrapPartitionConsumer(pc sarama.PartitionConsumer, cc *claimcheck.Checker, opts ...PartitionOption) sarama.PartitionConsumer {
	o := partitionOptions(opts)
	ctx, cancel := context.WithCancel(context.Background())
	p := &partitionConsumer{
		PartitionConsumer: pc, c: cc, o: o,
		msgs: make(chan *sarama.ConsumerMessage), errs: make(chan *sarama.ConsumerError, 64),
		ctx: ctx, cancel: cancel,
		budget: budget{pacer: pacer{width: o.readAhead}, max: o.readAhead, maxBytes: o.readAheadBytes, freed: make(chan struct{}, 1)},
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

// incoming is one message between the wrapped consumer and the
// application, in partition order.
type incoming struct {
	m    *sarama.ConsumerMessage
	cost int64         // bytes held against the budget; 0: not claim-checked
	done chan struct{} // closed when the first attempt has ended; nil: nothing to read
	// ahead: the first attempt ran while messages before it were
	// undelivered; if it failed for now, settle tries again at once before
	// reporting, so a store that came back meanwhile reports nothing.
	ahead bool
	// Written by the reading goroutine before done is closed.
	d   claimcheck.Decision
	err error
}

// run reads until both of the wrapped consumer's channels are closed: the
// wrapped consumer's errors pass through on a goroutine of their own,
// messages go through read (this goroutine), which starts their
// rehydration, and deliver (another), which sends them on in order. Once
// stopped, messages are dropped (they were not delivered, so no offset past
// them was handed out) and errors still forwarded.
func (p *partitionConsumer) run() {
	defer p.cancel()
	in, inErrs := p.PartitionConsumer.Messages(), p.PartitionConsumer.Errors()
	errsDone := make(chan struct{})
	go func() {
		defer close(errsDone)
		for e := range inErrs {
			p.errs <- e // read by the application, or by Close
		}
	}()
	queue := make(chan *incoming, p.o.readAhead)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		p.deliver(queue)
	}()
	p.read(in, queue)
	close(queue)
	<-delivered
	close(p.msgs)
	<-errsDone
	close(p.errs) // after every report deliver may send
}

// read takes messages from in until it is closed: one that needs nothing
// goes straight to msgs when nothing is ahead of it, or is queued behind
// what is; one that is claim-checked waits for room in the budget, starts
// its first rehydration attempt on a goroutine of its own, and is queued.
// Starts are paced as in the group handler wrapper (avgRead/readAhead
// apart while others are being read).
func (p *partitionConsumer) read(in <-chan *sarama.ConsumerMessage, queue chan<- *incoming) {
	var lastStart time.Time
	var pace *time.Timer
	defer func() {
		if pace != nil {
			pace.Stop()
		}
	}()
	for m := range in {
		if p.ctx.Err() != nil {
			continue // closing: dropped, never delivered
		}
		h := consumerHeaders(m)
		if !claimcheck.IsClaimChecked(h) && !claimcheck.IsAWSPointer(h) {
			p.c.Plain(p.ctx, m.Topic, len(m.Value), h)
			if p.queued.Load() == 0 {
				select {
				case p.msgs <- m:
				case <-p.ctx.Done():
				}
				continue
			}
			p.queued.Add(1)
			queue <- &incoming{m: m}
			continue
		}
		cost := declaredSize(h)
		if !p.budget.acquire(p.ctx, cost) {
			continue
		}
		if wait := p.budget.gap() - time.Since(lastStart); wait > 0 {
			if pace == nil {
				pace = time.NewTimer(wait)
			} else {
				pace.Reset(wait)
			}
			select {
			case <-pace.C:
			case <-p.ctx.Done():
				p.budget.release(cost)
				continue
			}
		}
		lastStart = time.Now()
		it := &incoming{m: m, cost: cost, done: make(chan struct{}), ahead: p.queued.Load() > 0}
		p.budget.started()
		go func() {
			t0 := time.Now()
			it.d, it.err = p.attempt(it.m, 1)
			p.budget.ended(time.Since(t0), it.d == claimcheck.Deliver)
			close(it.done) // last: deliver waits for it, so nothing here outlives run
		}()
		p.queued.Add(1)
		queue <- it
	}
}

// deliver sends the queued messages to msgs in order, each once its
// rehydration is settled (retrying as the checker decides), until queue is
// closed. Every queued read is waited for, so none outlives run.
func (p *partitionConsumer) deliver(queue <-chan *incoming) {
	for in := range queue {
		ok := true
		if in.done != nil {
			<-in.done // an attempt ends early once closing
			ok = p.settle(in)
		}
		if ok && p.ctx.Err() == nil {
			select {
			case p.msgs <- in.m:
			case <-p.ctx.Done():
			}
		}
		if in.done != nil {
			p.budget.release(in.cost)
		}
		p.queued.Add(-1)
	}
}

// attempt rehydrates m in place once.
func (p *partitionConsumer) attempt(m *sarama.ConsumerMessage, attempt int) (claimcheck.Decision, error) {
	rctx, cancel := p.o.withTimeout(p.ctx)
	defer cancel()
	_, d, err := p.c.RehydrateInPlace(rctx, claimcheck.Incoming{
		Topic: m.Topic, Body: &m.Value, Headers: ConsumerHeaders(m), Deliveries: attempt, Message: m,
	})
	return d, err
}

// settle takes the first attempt's result for in and retries while the
// checker says Redeliver; it reports whether in.m is to be delivered.
func (p *partitionConsumer) settle(in *incoming) bool {
	d, err := in.d, in.err
	if d == claimcheck.Redeliver && in.ahead && p.ctx.Err() == nil {
		d, err = p.attempt(in.m, 1)
	}
	wait := DefaultRetryMin
	reported := false
	for attempt := 2; ; attempt++ {
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
			p.report(in.m, &RehydrateError{Message: in.m, Skipped: true, Err: err})
			return false
		}
		if !reported {
			p.report(in.m, &RehydrateError{Message: in.m, Err: err})
			reported = true
		}
		select {
		case <-time.After(wait):
		case <-p.ctx.Done():
			return false
		}
		wait = min(2*wait, DefaultRetryMax)
		d, err = p.attempt(in.m, attempt)
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

// budget bounds a plain consumer's read-ahead: the messages being read or
// waiting for delivery (at most max, one alone whatever its size) and their
// declared bytes (within maxBytes). One goroutine acquires; any may release.
type budget struct {
	pacer
	mu              sync.Mutex
	n, max          int
	bytes, maxBytes int64
	freed           chan struct{} // capacity 1: wakes the acquirer
}

// acquire waits for room for a message of cost bytes; false once ctx ends.
func (b *budget) acquire(ctx context.Context, cost int64) bool {
	for {
		b.mu.Lock()
		if b.n == 0 || (b.n < b.max && b.bytes+cost <= b.maxBytes) {
			b.n++
			b.bytes += cost
			b.mu.Unlock()
			return true
		}
		b.mu.Unlock()
		select {
		case <-b.freed:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *budget) release(cost int64) {
	b.mu.Lock()
	b.n--
	b.bytes -= cost
	b.mu.Unlock()
	select {
	case b.freed <- struct{}{}:
	default:
	}
}
