package ccsarama

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

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
// was given and the wrapper has committed that offset (the session's
// synchronous Commit, once for every mark that releases a stash): a
// consumer that dies or loses the partition after the mark never comes
// back to a message whose stash is gone. sarama reports a commit that
// fails on the group's Errors channel, not to its caller: pass
// WithCommitCheck, so that the wrapper reads the committed offset back and
// keeps the stashes that a failed commit did not pass. Without it (the
// wrapper warns once), a stash is deleted after a failed commit too. A
// Kafka message is replayed by every group that reads the topic and after
// any offset reset, so use DeleteAfterAck only with one group and no
// resets.
//
// Rehydration reads ahead of h: up to WithReadAhead messages of a claim
// are rehydrated at once (their stash reads overlap), within a budget of
// WithReadAheadBytes of declared payload (one message alone may exceed
// it), and they reach h one at a time in partition order. When reads slow
// each other down (a store on the same CPUs), each starts no sooner than
// their average duration over the window after the last (the rate the
// window sustains), so that they do not end in bursts. Messages that are not
// claim-checked take no part in the budget and start nothing. Options:
// WithTimeout, WithReadAhead, WithReadAheadBytes, WithCommitCheck,
// WithLogger.
func WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler, c *claimcheck.Checker, opts ...HandlerOption) sarama.ConsumerGroupHandler {
	o := handlerOptions(opts)
	if c.DeletesAfterAck() && o.commits == nil {
		o.logger.Warn("ccsarama: stashes are deleted after each offset commit without reading the commit back; " +
			"after a commit that fails, as in a rebalance, the messages are replayed without their stashes (configure the commit check)")
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
	// Buffered like sarama's own claim channel, so that a message that
	// needs nothing costs no rendezvous of two goroutines; forward counts
	// what waits in it against the read-ahead budget.
	cl := &claim{ConsumerGroupClaim: sc, msgs: make(chan *sarama.ConsumerMessage, g.o.readAhead)}
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
		if acks != nil {
			acks.ended()
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
	// Written by the rehydrating goroutine before done is closed.
	addr string
	d    claimcheck.Decision
	err  error
}

// forward reads messages from in, rehydrates up to readAhead of them at
// once (their declared sizes within readAheadBytes, or one alone whatever
// its size), and sends them to out in partition order, until in is closed
// and everything read has been sent, stop is closed, or a message cannot be
// rehydrated and the checker decides it is to be redelivered (then it
// returns the error). A message is sent only after every message before it
// was sent or skipped, so h never sees, and cannot mark, anything past an
// unreadable stash.
func (g *groupHandler) forward(ctx context.Context, in <-chan *sarama.ConsumerMessage, out chan<- *sarama.ConsumerMessage, stop <-chan struct{}, acks *ackSession) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // rehydrations still running end early; their messages are never sent
		wg.Wait()
	}()
	ring := make([]slot, g.o.readAhead)
	var head, n, unstarted int // unstarted: the slots at the tail not yet started
	var inflight int64         // the costs of the started slots
	// The rehydrated messages sent but perhaps not yet taken by h, oldest
	// first, by their place in the sequence of sends (out holds the last
	// len(out) messages sent), and their costs.
	type sentCost struct{ seq, cost int64 }
	queued := make([]sentCost, 0, cap(out))
	var queuedBytes, sent int64
	reconcile := func() {
		taken := sent - int64(len(out))
		i := 0
		for i < len(queued) && queued[i].seq < taken {
			queuedBytes -= queued[i].cost
			i++
		}
		if i > 0 {
			queued = append(queued[:0], queued[i:]...)
		}
	}
	// Reads are paced (pacer): a waiting start is woken by pace.
	pc := pacer{width: len(ring)}
	var lastStart time.Time
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	var paceC <-chan time.Time
	start := func() {
		reconcile()
		for unstarted > 0 {
			s := &ring[(head+n-unstarted)%len(ring)]
			// Over the budget, a message waits while others are being
			// read (their ends will wake this loop); with none, it is read
			// alone, whatever its size and whatever waits for h.
			if inflight > 0 && inflight+queuedBytes+s.cost > g.o.readAheadBytes {
				return
			}
			now := time.Now()
			if gap := pc.gap(); gap > 0 {
				if wait := gap - now.Sub(lastStart); wait > 0 {
					if paceC == nil {
						pace.Reset(wait)
						paceC = pace.C
					}
					return
				}
			}
			lastStart = now
			pc.started()
			inflight += s.cost
			s.started = true
			unstarted--
			done := make(chan struct{})
			s.done = done
			wg.Add(1)
			go func(s *slot, m *sarama.ConsumerMessage) {
				defer wg.Done()
				t0 := time.Now()
				rctx, cancel := g.o.withTimeout(ctx)
				s.addr, s.d, s.err = rehydrate(rctx, g.c, m)
				cancel()
				pc.ended(time.Since(t0), s.d == claimcheck.Deliver)
				close(done)
			}(s, s.m)
		}
	}
	pop := func(wasSent bool) {
		inflight -= ring[head].cost
		if wasSent {
			if c := ring[head].cost; c > 0 {
				queued = append(queued, sentCost{sent, c})
				queuedBytes += c
			}
			sent++
		}
		ring[head] = slot{}
		head = (head + 1) % len(ring)
		n--
		start()
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if n == 0 && in != nil {
			// The fast path, while nothing is being read: a message that
			// is not claim-checked goes straight on. A channel operation
			// that can proceed at once is tried alone first: cheaper than a
			// select over two channels, which locks both.
			var m *sarama.ConsumerMessage
			var ok bool
			select {
			case m, ok = <-in:
			default:
				select {
				case m, ok = <-in:
				case <-stop:
					return nil
				}
			}
			if !ok {
				in = nil
				continue
			}
			if h := consumerHeaders(m); !marked(g.c, h) {
				g.c.Plain(ctx, m.Topic, len(m.Value), h)
				select {
				case out <- m:
				default:
					select {
					case out <- m:
					case <-stop:
						return nil
					}
				}
				sent++
				continue
			}
			ring[head] = slot{m: m, cost: declaredSize(ConsumerHeaders(m))}
			n, unstarted = 1, 1
			start()
			continue
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
			switch {
			case s.done != nil:
				ready = s.done
			case s.d != claimcheck.Deliver && ctx.Err() != nil:
				return nil // the claim is ending; the message was not delivered
			case s.d == claimcheck.Redeliver:
				return s.err
			case s.d != claimcheck.Deliver:
				pop(false) // Handled or Discard: skipped
				continue
			default:
				if acks != nil && s.addr != "" {
					acks.pending(s.m.Offset, s.addr)
					s.addr = "" // once, however many times the send is retried
				}
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
			if h := consumerHeaders(m); marked(g.c, h) {
				s.started = false
				s.cost = declaredSize(h)
				unstarted++
				start()
			} else {
				g.c.Plain(ctx, m.Topic, len(m.Value), h)
			}
		case <-ready:
			ring[head].done = nil // its goroutine wrote the result before closing done
		case <-paceC:
			paceC = nil
			start()
		case outC <- next:
			pop(true)
		case <-stop:
			return nil
		}
	}
}

// marked reports whether c rehydrates a message with headers h: one in
// claimstash's contract, or, when c writes AWS pointers, an AWS pointer
// (claimcheck.Checker.RehydrateInPlace reads both). Anything else goes to
// the handler as it is, so this is what keeps a pointer from reaching it
// as if it were the payload.
func marked(c *claimcheck.Checker, h *plainHeaders) bool {
	return claimcheck.IsClaimChecked(h) || c.Contract() == claimcheck.ContractAWSPointer && claimcheck.IsAWSPointer(h)
}

// declaredSize is the size a claim-checked message says it will have once
// rehydrated, at least 1; the checker verifies it against the stash, so a
// lying header fails the message rather than overrunning the budget by more
// than the bytes the read is bounded to.
func declaredSize(h claimcheck.Headers) int64 {
	v, ok := h.Get(claimcheck.HeaderSize)
	if !ok { // an AWS pointer's
		if v, ok = h.Get(claimcheck.AttrExtendedPayloadSize); !ok {
			v, _ = h.Get(claimcheck.AttrLegacyPayloadSize)
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// ackSession is the session the wrapped handler gets under DeleteAfterAck:
// marking a rehydrated message deletes its stash (claimcheck.Checker.Acked)
// once the offset past it is committed.
type ackSession struct {
	sarama.ConsumerGroupSession
	c         *claimcheck.Checker
	o         *options
	topic     string
	partition int32

	mu     sync.Mutex
	wait   []pendingAck // delivered to h, not yet marked; in offset order
	commit []pendingAck // marked, the commit not yet confirmed (WithCommitCheck); in offset order
	warned int          // len(commit) when it was last reported, 0 once it is empty again
}

// maxUnconfirmed bounds the stashes a claim keeps waiting for a confirmed
// commit (WithCommitCheck): past it, the oldest are left to their TTL, so
// that a check that never confirms (a wrong group ID) costs no more memory.
var maxUnconfirmed = 4096

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

// marked commits a mark that releases stashes of this claim's messages
// (those below next) and deletes the stashes that the committed offset has
// passed: those, and those of earlier marks whose commit was not confirmed.
func (a *ackSession) marked(topic string, partition int32, next int64) {
	if topic != a.topic || partition != a.partition {
		return
	}
	a.mu.Lock()
	i := 0
	for i < len(a.wait) && a.wait[i].offset < next {
		i++
	}
	a.commit = append(a.commit, a.wait[:i]...)
	a.wait = a.wait[i:]
	var dropped int
	if len(a.commit) > maxUnconfirmed {
		dropped = len(a.commit) - maxUnconfirmed
		a.commit = append(a.commit[:0], a.commit[dropped:]...)
	}
	waiting := len(a.commit)
	a.mu.Unlock()
	if dropped > 0 {
		a.o.logger.Warn("ccsarama: too many stashes wait for a confirmed offset commit; the oldest are left to their TTL", "topic", topic, "partition", partition, "group", a.o.group, "stashes", dropped)
	}
	if i == 0 || waiting == 0 {
		// Only a mark that releases stashes commits: those still waiting
		// for a confirmed commit are retried with the next such mark.
		return
	}
	// The offset first: deleted before its commit, a stash would be gone
	// for the replay of its message by whoever takes the partition next.
	a.ConsumerGroupSession.Commit()
	committed := int64(math.MaxInt64) // without the check, taken as done
	var err error
	if a.o.commits != nil {
		committed, err = a.committed()
	}
	a.mu.Lock()
	var done []pendingAck
	if err == nil {
		i = 0
		for i < len(a.commit) && a.commit[i].offset < committed {
			i++
		}
		done = a.commit[:i:i]
		a.commit = a.commit[i:]
	}
	left := len(a.commit)
	// Reported when the number waiting first reaches 1, 2, 4, ...: a
	// commit or a check that keeps failing does not log every mark.
	report := left > 0 && left >= 2*a.warned
	switch {
	case report:
		a.warned = left
	case left == 0:
		a.warned = 0
	}
	a.mu.Unlock()
	if report {
		msg := "ccsarama: the offset commit did not pass marked messages; their stashes wait for the next commit"
		if err != nil {
			msg = "ccsarama: the offset commit could not be read back; the stashes wait for the next commit"
		}
		if committed < 0 || errors.Is(err, sarama.ErrGroupIDNotFound) {
			msg += " (the group has no committed offset yet; if this lasts, check that the commit check is given the consumer group's ID)"
		}
		args := []any{"topic", topic, "partition", partition, "group", a.o.group, "waiting", left}
		if err != nil {
			args = append(args, "err", err)
		} else {
			args = append(args, "committed", committed)
		}
		a.o.logger.Warn(msg, args...)
	}
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

// committed reads the group's committed offset of the claim's partition
// from its coordinator (WithCommitCheck).
func (a *ackSession) committed() (int64, error) {
	resp, err := a.o.commits.ListConsumerGroupOffsets(a.o.group, map[string][]int32{a.topic: {a.partition}})
	if err != nil {
		return 0, err
	}
	b := resp.GetBlock(a.topic, a.partition)
	switch {
	case b == nil:
		return 0, fmt.Errorf("the coordinator of group %q sent no offset for the partition", a.o.group)
	case !errors.Is(b.Err, sarama.ErrNoError):
		return 0, b.Err
	}
	return b.Offset, nil
}

// ended reports the stashes whose commit was never confirmed, when the
// claim ends: they are left to their TTL.
func (a *ackSession) ended() {
	a.mu.Lock()
	left := len(a.commit)
	a.mu.Unlock()
	if left > 0 {
		a.o.logger.Warn("ccsarama: the claim ended before an offset commit passed marked messages; their stashes are left to their TTL", "topic", a.topic, "partition", a.partition, "stashes", left)
	}
}

// pacer spaces the starts of a window's reads when they slow each other
// down: while reads are in flight and their moving average duration is
// over 1.5 times the fastest recent one (reads that share a CPU, as with a
// store on the same machine, or a saturated link), one starts no sooner
// than the average over the window's width after the last. That is the
// rate the window sustains anyway, so it costs no throughput; it keeps
// such reads from running in lockstep, ending together and reaching the
// application in bursts with long waits between them. Reads whose time
// does not grow with their number (a remote store's latency) start at once.
type pacer struct {
	width   int
	mu      sync.Mutex
	reading int           // reads started and not ended
	avg     time.Duration // moving average of a read's duration
	fastest time.Duration // the fastest read, drifting up to recent ones
}

func (p *pacer) started() {
	p.mu.Lock()
	p.reading++
	p.mu.Unlock()
}

// ended records a read's end; only reads that succeeded (ok) count towards
// the durations, since a failure can end far sooner than any read.
func (p *pacer) ended(d time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reading--
	if !ok {
		return
	}
	if p.avg == 0 {
		p.avg = d
	} else {
		p.avg += (d - p.avg) / 8
	}
	if p.fastest == 0 || d < p.fastest {
		p.fastest = d
	} else {
		p.fastest += (d - p.fastest) / 64
	}
}

// gap is how long after the last start the next may start: 0 while
// nothing is being read or reads are not slowing each other down.
func (p *pacer) gap() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reading == 0 || 2*p.avg < 3*p.fastest {
		return 0
	}
	return p.avg / time.Duration(p.width)
}
