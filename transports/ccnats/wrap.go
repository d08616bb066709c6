package ccnats

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
)

// ErrHandled is what WrappedConn.Rehydrate returns for a message whose
// stash could not be read and that the checker's
// claimcheck.OnRehydrateFailure handler took (claimcheck.Handled; a
// JetStream message is then acknowledged): do not handle it, and there is
// nothing to report.
var ErrHandled = errors.New("ccnats: message taken by the failure handler")

// WrappedConn is a *nats.Conn whose publishes and subscriptions are
// claim-checked, with nats.go's own method set, so that an existing
// pipeline changes in one line:
//
//	nc, err := nats.Connect(url)
//	wc, err := ccnats.WrapConn(nc, checker) // then use wc where nc was used
//
// Publish, PublishMsg, PublishRequest, Request, RequestMsg and their
// WithContext forms offload a body over the checker's threshold, or over the
// server's max_payload, first (the
// stash is written before the message is sent; a failure to write it is
// returned and nothing is sent). Subscribe, QueueSubscribe, ChanSubscribe,
// ChanQueueSubscribe, SubscribeSync, QueueSubscribeSync and
// QueueSubscribeSyncWithChan deliver messages rehydrated, in place, and
// replies to requests come back rehydrated; JetStream returns the legacy
// JetStream context, claim-checked the same way. Everything else (Flush,
// Drain, Close, status, statistics) is the embedded connection's.
//
// A message whose stash cannot be read never reaches a handler, a channel
// or a NextMsg caller. The checker decides what happens to it
// (claimcheck.Checker.Decide), and the wrapper carries the decision out: a
// JetStream message (one with a JetStream ack subject) is Ack'ed when the
// checker's failure handler took it, terminated when the checker discards
// it (claimcheck.DiscardAfter), and otherwise Nak'ed with the checker's
// RetryDelay so that it is redelivered; a core NATS message, which nothing
// redelivers, is dropped. Either way the error is logged (WithLogger), and
// the checker's observer sees it.
//
// The subscription methods return *Subscription, and JetStream a
// *JetStreamContext, not nats.go's types, so that NextMsg and Fetch can
// rehydrate: code that declares its variables with := compiles unchanged;
// code that names *nats.Subscription or nats.JetStreamContext changes that
// name too (Subscription.Unwrap and JetStreamContext.Unwrap give nats.go's
// values, which do not rehydrate).
//
// Not covered: Msg.Respond and Msg.RespondMsg, which publish through the
// raw connection (use wc.Publish(m.Reply, data) to reply with a
// claim-checked body), and the jetstream package's API, which takes the raw
// connection (wrap it with NewJetStream and decorate its consumers with
// MessageHandler, Messages or Batch). Use Rehydrate on any *nats.Msg that
// reached the application some other way.
//
// With claimcheck.DeleteAfterAck, a core message's stash is deleted once its
// handler returns (or once it is handed to a channel or a NextMsg caller);
// a JetStream message's is left to its TTL, as its Ack goes straight to
// nats.go.
type WrappedConn struct {
	*nats.Conn
	mp  *maxPayload
	cc  *claimcheck.Checker
	cfg base
	js  *consumer // the JetStream side, over legacyMsg
}

// WrapConn wraps nc. It refuses a connection whose server does not support
// headers (ErrHeadersNotSupported).
func WrapConn(nc *nats.Conn, cc *claimcheck.Checker, opts ...Option) (*WrappedConn, error) {
	if nc == nil || cc == nil {
		return nil, errors.New("ccnats: WrapConn: nil connection or checker")
	}
	if !nc.HeadersSupported() {
		return nil, ErrHeadersNotSupported
	}
	return &WrappedConn{Conn: nc, mp: newMaxPayload(nc), cc: cc, cfg: newBase(opts), js: newConsumer(cc, opts)}, nil
}

// Checker returns the claim checker.
func (c *WrappedConn) Checker() *claimcheck.Checker { return c.cc }

// Unwrap returns the wrapped connection.
func (c *WrappedConn) Unwrap() *nats.Conn { return c.Conn }

// Publish publishes data on subj, offloading it first if the checker says
// so. The stash is written under the WithContext context, bounded by
// WithTimeout.
func (c *WrappedConn) Publish(subj string, data []byte) error {
	if pass(c.cfg.ctx, c.mp, c.cc, subj, data) {
		err := c.Conn.Publish(subj, data)
		if !c.mp.retry(err, c.cc, data, nil) {
			return err
		}
	}
	return c.PublishMsg(&nats.Msg{Subject: subj, Data: data})
}

// PublishMsg publishes m, offloading its body first if the checker says
// so. m itself is not changed: an offloaded message is sent as a copy.
func (c *WrappedConn) PublishMsg(m *nats.Msg) error {
	if passes(c.cfg.ctx, c.mp, c.cc, m) {
		err := c.Conn.PublishMsg(m)
		if !c.mp.retry(err, c.cc, m.Data, m.Header) {
			return err
		}
	}
	ctx, cancel := c.cfg.context()
	defer cancel()
	out, err := offload(ctx, c.mp, c.cc, m)
	if err != nil {
		return err
	}
	return c.Conn.PublishMsg(out)
}

// PublishRequest publishes data on subj with reply as its reply subject,
// offloading it first if the checker says so.
func (c *WrappedConn) PublishRequest(subj, reply string, data []byte) error {
	if pass(c.cfg.ctx, c.mp, c.cc, subj, data) {
		err := c.Conn.PublishRequest(subj, reply, data)
		if !c.mp.retry(err, c.cc, data, nil) {
			return err
		}
	}
	return c.PublishMsg(&nats.Msg{Subject: subj, Reply: reply, Data: data})
}

// Request sends data on subj and waits up to timeout for the reply. The
// request is offloaded if need be (the stash write is bounded by
// WithTimeout, not by timeout), and a claim-checked reply is rehydrated:
// a reply whose stash cannot be read is an error.
func (c *WrappedConn) Request(subj string, data []byte, timeout time.Duration) (*nats.Msg, error) {
	if !pass(c.cfg.ctx, c.mp, c.cc, subj, data) {
		return c.RequestMsg(&nats.Msg{Subject: subj, Data: data}, timeout)
	}
	reply, err := c.Conn.Request(subj, data, timeout)
	if c.mp.retry(err, c.cc, data, nil) {
		return c.RequestMsg(&nats.Msg{Subject: subj, Data: data}, timeout)
	}
	if err != nil {
		return nil, err
	}
	return reply, c.rehydrateReply(reply)
}

// RequestMsg is Request for a message with headers.
func (c *WrappedConn) RequestMsg(m *nats.Msg, timeout time.Duration) (*nats.Msg, error) {
	out := m
	if !passes(c.cfg.ctx, c.mp, c.cc, m) {
		var err error
		if out, err = c.offload(m); err != nil {
			return nil, err
		}
	}
	reply, err := c.Conn.RequestMsg(out, timeout)
	if out == m && c.mp.retry(err, c.cc, m.Data, m.Header) {
		if out, err = c.offload(m); err != nil {
			return nil, err
		}
		reply, err = c.Conn.RequestMsg(out, timeout)
	}
	if err != nil {
		return nil, err
	}
	return reply, c.rehydrateReply(reply)
}

// RequestWithContext is Request with the wait, and the stash write, bounded
// by ctx.
func (c *WrappedConn) RequestWithContext(ctx context.Context, subj string, data []byte) (*nats.Msg, error) {
	if !pass(ctx, c.mp, c.cc, subj, data) {
		return c.RequestMsgWithContext(ctx, &nats.Msg{Subject: subj, Data: data})
	}
	reply, err := c.Conn.RequestWithContext(ctx, subj, data)
	if c.mp.retry(err, c.cc, data, nil) {
		return c.RequestMsgWithContext(ctx, &nats.Msg{Subject: subj, Data: data})
	}
	if err != nil {
		return nil, err
	}
	return reply, c.rehydrateReply(reply)
}

// RequestMsgWithContext is RequestMsg with the wait, and the stash write,
// bounded by ctx.
func (c *WrappedConn) RequestMsgWithContext(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	out := m
	if !passes(ctx, c.mp, c.cc, m) {
		var err error
		if out, err = offload(ctx, c.mp, c.cc, m); err != nil {
			return nil, err
		}
	}
	reply, err := c.Conn.RequestMsgWithContext(ctx, out)
	if out == m && c.mp.retry(err, c.cc, m.Data, m.Header) {
		if out, err = offload(ctx, c.mp, c.cc, m); err != nil {
			return nil, err
		}
		reply, err = c.Conn.RequestMsgWithContext(ctx, out)
	}
	if err != nil {
		return nil, err
	}
	return reply, c.rehydrateReply(reply)
}

// offload is offload under the WithContext context, bounded by
// WithTimeout.
func (c *WrappedConn) offload(m *nats.Msg) (*nats.Msg, error) {
	ctx, cancel := c.cfg.context()
	defer cancel()
	return offload(ctx, c.mp, c.cc, m)
}

func (c *WrappedConn) rehydrateReply(reply *nats.Msg) error {
	if !marked(c.cc, reply.Header) {
		c.cc.Plain(c.cfg.ctx, reply.Subject, len(reply.Data), Header(reply.Header))
		return nil // no context made for a reply that is not claim-checked
	}
	ctx, cancel := c.cfg.context()
	defer cancel()
	_, err := c.rehydrateCore(ctx, reply)
	return err
}

// Subscribe subscribes cb to subj; claim-checked messages reach cb
// rehydrated.
func (c *WrappedConn) Subscribe(subj string, cb nats.MsgHandler) (*Subscription, error) {
	return c.sub(c.Conn.Subscribe(subj, c.handler(cb)))
}

// QueueSubscribe subscribes cb to subj in queue group queue; claim-checked
// messages reach cb rehydrated.
func (c *WrappedConn) QueueSubscribe(subj, queue string, cb nats.MsgHandler) (*Subscription, error) {
	return c.sub(c.Conn.QueueSubscribe(subj, queue, c.handler(cb)))
}

// ChanSubscribe delivers the messages of subj to ch, rehydrated. The
// messages are read and rehydrated by the subscription's own goroutine, as
// for Subscribe, then sent on ch: when ch is full the send waits (and the
// subscription's pending limits apply to what queues up behind it) until
// ch has room or the subscription is closed.
//
// nats.go's own ChanSubscribe has its connection's reading goroutine send
// to ch directly; here every message, claim-checked or not, passes through
// the subscription's goroutine first, one goroutine hand-off more (on a
// loopback server the benchmark cannot tell it from noise: it overlaps
// with the network). Where it matters, subscribe on the raw connection and
// rehydrate in the reader, which costs a header lookup per message:
//
//	sub, err := wc.Conn.ChanSubscribe(subj, ch) // nats.go's, no hand-off
//	for m := range ch {
//		if err := wc.Rehydrate(ctx, m); err != nil {
//			continue // settled (JetStream) or lost (core); do not handle
//		}
//		handle(m)
//	}
func (c *WrappedConn) ChanSubscribe(subj string, ch chan *nats.Msg) (*Subscription, error) {
	return c.sub(c.Conn.Subscribe(subj, c.chanHandler(ch)))
}

// ChanQueueSubscribe is ChanSubscribe in queue group group.
func (c *WrappedConn) ChanQueueSubscribe(subj, group string, ch chan *nats.Msg) (*Subscription, error) {
	return c.sub(c.Conn.QueueSubscribe(subj, group, c.chanHandler(ch)))
}

// QueueSubscribeSyncWithChan is ChanQueueSubscribe (nats.go's two differ
// only in their names).
func (c *WrappedConn) QueueSubscribeSyncWithChan(subj, queue string, ch chan *nats.Msg) (*Subscription, error) {
	return c.ChanQueueSubscribe(subj, queue, ch)
}

// SubscribeSync subscribes to subj for NextMsg, which returns rehydrated
// messages.
func (c *WrappedConn) SubscribeSync(subj string) (*Subscription, error) {
	return c.sub(c.Conn.SubscribeSync(subj))
}

// QueueSubscribeSync is SubscribeSync in queue group queue.
func (c *WrappedConn) QueueSubscribeSync(subj, queue string) (*Subscription, error) {
	return c.sub(c.Conn.QueueSubscribeSync(subj, queue))
}

func (c *WrappedConn) sub(s *nats.Subscription, err error) (*Subscription, error) {
	if err != nil {
		return nil, err
	}
	return &Subscription{Subscription: s, c: c}, nil
}

// handler decorates cb: cb sees only deliverable messages, rehydrated.
func (c *WrappedConn) handler(cb nats.MsgHandler) nats.MsgHandler {
	return func(m *nats.Msg) {
		addr, ok := c.deliver(m)
		if !ok {
			return
		}
		cb(m)
		c.handled(m, addr)
	}
}

// chanHandler sends deliverable messages to ch, waiting for room while the
// subscription is open.
func (c *WrappedConn) chanHandler(ch chan *nats.Msg) nats.MsgHandler {
	return func(m *nats.Msg) {
		addr, ok := c.deliver(m)
		if !ok {
			return
		}
		if !send(ch, m) {
			if isJetStream(m) {
				_ = m.Nak() // redelivered to whoever consumes next
			}
			return
		}
		c.handled(m, addr)
	}
}

// send puts m on ch, waiting while m's subscription is still open. It
// reports whether m was sent.
func send(ch chan *nats.Msg, m *nats.Msg) bool {
	select {
	case ch <- m:
		return true
	default:
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case ch <- m:
			return true
		case <-t.C:
			if m.Sub != nil && !m.Sub.IsValid() {
				return false
			}
		}
	}
}

// Rehydrate rehydrates m in place, for messages that reached the
// application without the wrapper's help (a subscription made on the raw
// connection, a message passed along): its body becomes the payload and
// the contract headers are removed. It returns nil when m may be handled
// (a message that is not claim-checked is left as it is). Otherwise m must
// not be handled: for a JetStream message, the checker's decision has
// already been carried out (Nak with the checker's RetryDelay, or Term) and
// the error says so (ErrTerminated once terminated); an error matching
// ErrHandled means the checker's failure handler took the message. The
// error is not logged: the caller has it.
func (c *WrappedConn) Rehydrate(ctx context.Context, m *nats.Msg) error {
	if m == nil {
		return nats.ErrInvalidMsg
	}
	if isJetStream(m) {
		r, err := c.js.rehydrate(ctx, legacyMsg{m})
		if err == errHandled {
			return ErrHandled
		}
		if err != nil {
			return err
		}
		if rm, ok := r.(*rehydratedMsg); ok {
			m.Data = rm.data
		}
		return nil
	}
	_, err := c.rehydrateCore(ctx, m)
	return err
}

// deliver rehydrates m under the handler context and reports whether it may
// be handed to the application; failures are settled and reported. addr is
// the stash of a core message, for DeleteAfterAck.
func (c *WrappedConn) deliver(m *nats.Msg) (addr string, ok bool) {
	if !marked(c.cc, m.Header) {
		c.cc.Plain(context.Background(), m.Subject, len(m.Data), Header(m.Header))
		return "", true
	}
	ctx, cancel := c.cfg.context()
	defer cancel()
	if isJetStream(m) {
		r, ok := c.js.rehydrateOrReport(ctx, legacyMsg{m})
		if !ok {
			return "", false
		}
		if rm, isView := r.(*rehydratedMsg); isView {
			m.Data = rm.data
		}
		return "", true
	}
	addr, err := c.rehydrateCore(ctx, m)
	if err != nil {
		if !errors.Is(err, ErrHandled) {
			c.cfg.logger.Error("ccnats: message dropped", "subject", m.Subject, "err", err)
		}
		return "", false
	}
	return addr, true
}

// handled tells the checker a core message was handled
// (claimcheck.DeleteAfterAck).
func (c *WrappedConn) handled(m *nats.Msg, addr string) {
	if addr == "" || !c.cc.DeletesAfterAck() {
		return
	}
	ctx, cancel := c.cfg.context()
	defer cancel()
	if err := c.cc.Acked(ctx, addr); err != nil {
		c.cfg.logger.Warn("ccnats: deleting the stash of a handled message", "subject", m.Subject, "err", err)
	}
}

// rehydrateCore rehydrates a core NATS message in place and returns its
// stash address. On a failure the checker decides: ErrHandled when its
// handler took the message, the error otherwise (nothing can redeliver a
// core message, so Redeliver and Discard come to the same).
func (c *WrappedConn) rehydrateCore(ctx context.Context, m *nats.Msg) (string, error) {
	if !marked(c.cc, m.Header) {
		c.cc.Plain(ctx, m.Subject, len(m.Data), Header(m.Header))
		return "", nil
	}
	addr, d, err := c.cc.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: m.Subject, Body: &m.Data, Headers: Header(m.Header), Message: m})
	switch d {
	case claimcheck.Deliver:
		return addr, nil
	case claimcheck.Handled:
		return "", ErrHandled
	}
	return "", err
}

// isJetStream reports whether m was delivered by a JetStream consumer (and
// can be acknowledged).
func isJetStream(m *nats.Msg) bool {
	return m.Sub != nil && strings.HasPrefix(m.Reply, "$JS.ACK.")
}

// Subscription is a *nats.Subscription whose NextMsg, NextMsgWithContext,
// Fetch and FetchBatch return rehydrated messages. A message whose stash
// cannot be read is settled and reported as WrappedConn says, and the call
// goes on to the next message (within its timeout).
type Subscription struct {
	*nats.Subscription
	c *WrappedConn
}

// Unwrap returns the wrapped subscription.
func (s *Subscription) Unwrap() *nats.Subscription { return s.Subscription }

// NextMsg returns the next deliverable message, waiting up to timeout in
// all (nats.ErrTimeout after that).
func (s *Subscription) NextMsg(timeout time.Duration) (*nats.Msg, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := s.Subscription.NextMsg(timeout)
		if err != nil {
			return nil, err
		}
		if addr, ok := s.c.deliver(m); ok {
			s.c.handled(m, addr)
			return m, nil
		}
		if timeout = time.Until(deadline); timeout <= 0 {
			return nil, nats.ErrTimeout
		}
	}
}

// NextMsgWithContext returns the next deliverable message, waiting until
// ctx is done. The stash read is bounded by WithTimeout, not by ctx.
func (s *Subscription) NextMsgWithContext(ctx context.Context) (*nats.Msg, error) {
	for {
		m, err := s.Subscription.NextMsgWithContext(ctx)
		if err != nil {
			return nil, err
		}
		if addr, ok := s.c.deliver(m); ok {
			s.c.handled(m, addr)
			return m, nil
		}
	}
}

// Fetch pulls up to batch messages of a pull subscription and returns the
// deliverable ones, rehydrated: fewer than JetStream delivered, none at all
// (and a nil error) when every one of them failed.
func (s *Subscription) Fetch(batch int, opts ...nats.PullOpt) ([]*nats.Msg, error) {
	msgs, err := s.Subscription.Fetch(batch, opts...)
	if err != nil {
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		if _, ok := s.c.deliver(m); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// FetchBatch is Fetch whose messages arrive on a channel as JetStream
// delivers them, rehydrated one by one. A goroutine reads nats.go's batch
// and hands each message on: one goroutine hand-off per message, even for
// messages that need no rehydration. Fetch has none.
func (s *Subscription) FetchBatch(batch int, opts ...nats.PullOpt) (nats.MessageBatch, error) {
	in, err := s.Subscription.FetchBatch(batch, opts...)
	if err != nil {
		return nil, err
	}
	// out holds the whole batch, so the forwarding goroutine never waits on
	// the reader and ends when JetStream's batch does.
	b := &fetchBatch{in: in, out: make(chan *nats.Msg, max(batch, 1)), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		defer close(b.out)
		for m := range in.Messages() {
			if _, ok := s.c.deliver(m); ok {
				b.out <- m
			}
		}
	}()
	return b, nil
}

type fetchBatch struct {
	in   nats.MessageBatch
	out  chan *nats.Msg
	done chan struct{}
}

func (b *fetchBatch) Messages() <-chan *nats.Msg { return b.out }
func (b *fetchBatch) Error() error               { return b.in.Error() }
func (b *fetchBatch) Done() <-chan struct{}      { return b.done }

// legacyMsg is a legacy JetStream *nats.Msg seen as a jetstream.Msg, so
// that the JetStream decorators' policy settles it.
type legacyMsg struct{ m *nats.Msg }

var _ jetstream.Msg = legacyMsg{}

func (l legacyMsg) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := l.m.Metadata()
	if err != nil {
		return nil, err
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Consumer: md.Sequence.Consumer, Stream: md.Sequence.Stream},
		NumDelivered: md.NumDelivered, NumPending: md.NumPending, Timestamp: md.Timestamp,
		Stream: md.Stream, Consumer: md.Consumer, Domain: md.Domain,
	}, nil
}
func (l legacyMsg) Data() []byte                        { return l.m.Data }
func (l legacyMsg) Headers() nats.Header                { return l.m.Header }
func (l legacyMsg) Subject() string                     { return l.m.Subject }
func (l legacyMsg) Reply() string                       { return l.m.Reply }
func (l legacyMsg) Ack() error                          { return l.m.Ack() }
func (l legacyMsg) DoubleAck(ctx context.Context) error { return l.m.AckSync(nats.Context(ctx)) }
func (l legacyMsg) Nak() error                          { return l.m.Nak() }
func (l legacyMsg) NakWithDelay(d time.Duration) error  { return l.m.NakWithDelay(d) }
func (l legacyMsg) InProgress() error                   { return l.m.InProgress() }
func (l legacyMsg) Term() error                         { return l.m.Term() }
func (l legacyMsg) TermWithReason(string) error         { return l.m.Term() }
