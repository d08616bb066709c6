package ccnats

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
)

// Conn claim-checks what it publishes on a core NATS connection: a message
// over the checker's threshold, or over the server's max_payload (see the
// package documentation), is stored first and sent as its stash address,
// with the contract in headers. It is safe for concurrent use; the
// connection stays the caller's to close.
type Conn struct {
	nc  *nats.Conn
	mp  *maxPayload
	cc  *claimcheck.Checker
	cfg base
}

// NewConn wraps nc. It refuses a connection whose server does not support
// headers (ErrHeadersNotSupported): without them, a claim-checked message
// could not be told from one that is not.
func NewConn(nc *nats.Conn, cc *claimcheck.Checker, opts ...Option) (*Conn, error) {
	if nc == nil || cc == nil {
		return nil, errors.New("ccnats: NewConn: nil connection or checker")
	}
	if !nc.HeadersSupported() {
		return nil, ErrHeadersNotSupported
	}
	return &Conn{nc: nc, mp: newMaxPayload(nc), cc: cc, cfg: newBase(opts)}, nil
}

// NATS returns the wrapped connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// Checker returns the claim checker.
func (c *Conn) Checker() *claimcheck.Checker { return c.cc }

// Publish publishes data on subj, offloading it first if the checker says
// so. The stash is written under ctx; a failure to write it is returned
// (a *claimcheck.Error that unwraps to the stash error) and nothing is
// sent.
func (c *Conn) Publish(ctx context.Context, subj string, data []byte) error {
	if pass(ctx, c.mp, c.cc, subj, data) {
		err := c.nc.Publish(subj, data)
		if !c.mp.retry(err, c.cc, data, nil) {
			return err
		}
	}
	m, err := offload(ctx, c.mp, c.cc, &nats.Msg{Subject: subj, Data: data})
	if err != nil {
		return err
	}
	if m.Header == nil {
		return c.nc.Publish(subj, m.Data)
	}
	return c.nc.PublishMsg(m)
}

// PublishMsg publishes m, offloading its body first if the checker says so.
// m itself is not changed: an offloaded message is sent as a copy.
func (c *Conn) PublishMsg(ctx context.Context, m *nats.Msg) error {
	if passes(ctx, c.mp, c.cc, m) {
		err := c.nc.PublishMsg(m)
		if !c.mp.retry(err, c.cc, m.Data, m.Header) {
			return err
		}
	}
	out, err := offload(ctx, c.mp, c.cc, m)
	if err != nil {
		return err
	}
	return c.nc.PublishMsg(out)
}

// Request sends data on subj as a request and waits for the reply until ctx
// is done (give it a deadline). Both ways are claim-checked: the request is
// offloaded if need be, and a claim-checked reply is rehydrated.
func (c *Conn) Request(ctx context.Context, subj string, data []byte) (*nats.Msg, error) {
	if !pass(ctx, c.mp, c.cc, subj, data) {
		return c.RequestMsg(ctx, &nats.Msg{Subject: subj, Data: data})
	}
	reply, err := c.nc.RequestWithContext(ctx, subj, data)
	if c.mp.retry(err, c.cc, data, nil) {
		return c.RequestMsg(ctx, &nats.Msg{Subject: subj, Data: data})
	}
	if err != nil {
		return nil, err
	}
	if err := rehydrateCore(ctx, c.cc, reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// RequestMsg is Request for a message with headers.
func (c *Conn) RequestMsg(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	out := m
	if !passes(ctx, c.mp, c.cc, m) {
		var err error
		if out, err = offload(ctx, c.mp, c.cc, m); err != nil {
			return nil, err
		}
	}
	reply, err := c.nc.RequestMsgWithContext(ctx, out)
	if out == m && c.mp.retry(err, c.cc, m.Data, m.Header) {
		if out, err = offload(ctx, c.mp, c.cc, m); err != nil {
			return nil, err
		}
		reply, err = c.nc.RequestMsgWithContext(ctx, out)
	}
	if err != nil {
		return nil, err
	}
	if err := rehydrateCore(ctx, c.cc, reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// Respond replies to req with data, offloading it if need be. req must
// have a reply subject (nats.ErrMsgNoReply otherwise).
func (c *Conn) Respond(ctx context.Context, req *nats.Msg, data []byte) error {
	if req != nil && req.Reply != "" && pass(ctx, c.mp, c.cc, req.Reply, data) {
		err := c.nc.Publish(req.Reply, data)
		if !c.mp.retry(err, c.cc, data, nil) {
			return err
		}
	}
	return c.RespondMsg(ctx, req, &nats.Msg{Data: data})
}

// RespondMsg replies to req with resp (its subject is ignored), offloading
// its body if need be.
func (c *Conn) RespondMsg(ctx context.Context, req, resp *nats.Msg) error {
	if req == nil || req.Reply == "" {
		return nats.ErrMsgNoReply
	}
	r := &nats.Msg{Subject: req.Reply, Header: resp.Header, Data: resp.Data}
	out, err := offload(ctx, c.mp, c.cc, r)
	if err != nil {
		return err
	}
	err = c.nc.PublishMsg(out)
	if out == r && c.mp.retry(err, c.cc, r.Data, r.Header) {
		if out, err = offload(ctx, c.mp, c.cc, r); err != nil {
			return err
		}
		err = c.nc.PublishMsg(out)
	}
	return err
}

// Subscribe subscribes h to subj through MsgHandler: claim-checked messages
// reach h rehydrated.
func (c *Conn) Subscribe(subj string, h nats.MsgHandler, opts ...Option) (*nats.Subscription, error) {
	return c.nc.Subscribe(subj, MsgHandler(c.cc, h, opts...))
}

// QueueSubscribe subscribes h to subj in queue group queue through
// MsgHandler. Each message goes to one member of the group, which
// rehydrates it.
func (c *Conn) QueueSubscribe(subj, queue string, h nats.MsgHandler, opts ...Option) (*nats.Subscription, error) {
	return c.nc.QueueSubscribe(subj, queue, MsgHandler(c.cc, h, opts...))
}

// passes is the publishers' fast path (claimcheck.Checker.Pass): m goes out
// as it is, with no header copy, no context and no new message made for it.
// A message over the connection's max_payload that may be claim-checked
// does not pass (overCap). A message that passes and that nats.go then
// refuses for max_payload (maxPayload.retry: the value kept was stale) is
// sent again through offload.
func passes(ctx context.Context, mp *maxPayload, cc *claimcheck.Checker, m *nats.Msg) bool {
	return m != nil && !overCap(mp, cc, m.Data, m.Header) && cc.Pass(ctx, m.Subject, m.Data, exactHeader(m.Header))
}

// pass is passes for a body without headers on subj.
func pass(ctx context.Context, mp *maxPayload, cc *claimcheck.Checker, subj string, data []byte) bool {
	return !overCap(mp, cc, data, nil) && cc.Pass(ctx, subj, data, exactHeader(nil))
}

// offload applies the policy to m and returns the message to send: m itself
// when nothing changed, otherwise a new message with the stash address as
// its body and a copy of m's headers with the contract set.
//
// A message over the connection's max_payload that the checker would send
// as it is is claim-checked all the same (overCap), through the
// claimstash-offload override set on the copy. A message whose reference
// could not fit max_payload is refused before anything is stored
// (checkReference).
func offload(ctx context.Context, mp *maxPayload, cc *claimcheck.Checker, m *nats.Msg) (*nats.Msg, error) {
	if m == nil {
		return nil, nats.ErrInvalidMsg
	}
	mp.read() // afresh: off the fast path, before a stash may be written
	h := &cowHeader{src: m.Header}
	if overCap(mp, cc, m.Data, m.Header) {
		h.Set(claimcheck.HeaderOffload, claimcheck.OffloadAlways)
	}
	if err := checkReference(mp, cc, m.Subject, m.Data, h, m.Header); err != nil {
		return nil, err
	}
	data, _, err := cc.Offload(ctx, m.Subject, m.Data, h)
	if err != nil {
		return nil, err
	}
	if !h.copied {
		return m, nil
	}
	return &nats.Msg{Subject: m.Subject, Reply: m.Reply, Header: h.dst, Data: data}, nil
}

// rehydrateCore rehydrates m in place: its body is replaced and the
// contract headers are removed. On error m is unchanged.
func rehydrateCore(ctx context.Context, cc *claimcheck.Checker, m *nats.Msg) error {
	// A message that is not claim-checked comes back as it was, and the
	// checker's observer counts it (claimcheck.OpPlain).
	data, address, err := cc.Rehydrate(ctx, m.Subject, m.Data, Header(m.Header))
	if err != nil {
		return err
	}
	if address != "" {
		m.Data = data
	}
	return nil
}

// MsgHandler decorates a core NATS handler, for plain subscriptions and
// queue groups alike. A claim-checked message is rehydrated in place (body
// replaced, contract headers removed) before next sees it; other messages
// pass through untouched. If the stash cannot be read, next is not called:
// the checker decides (claimcheck.Checker.Decide; its OnRehydrateFailure
// handler sees permanent failures). Core NATS has no redelivery: a message
// that is not Handled is lost, and the error is logged (WithLogger); use
// JetStream and MessageHandler where that matters.
//
// With claimcheck.DeleteAfterAck, the stash is deleted once next returns.
func MsgHandler(cc *claimcheck.Checker, next nats.MsgHandler, opts ...Option) nats.MsgHandler {
	cfg := newBase(opts)
	return func(m *nats.Msg) {
		if !marked(cc, m.Header) {
			// Not claim-checked: delivered as it is, counted by the
			// checker's observer (claimcheck.OpPlain).
			cc.Plain(cfg.ctx, m.Subject, len(m.Data), Header(m.Header))
			next(m)
			return
		}
		ctx, cancel := cfg.context()
		addr, d, err := cc.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: m.Subject, Body: &m.Data, Headers: Header(m.Header), Message: m})
		cancel()
		switch d {
		case claimcheck.Handled:
			return
		case claimcheck.Redeliver, claimcheck.Discard:
			cfg.logger.Error("ccnats: message dropped", "subject", m.Subject, "decision", d.String(), "err", err)
			return
		}
		next(m)
		ctx, cancel = cfg.context()
		defer cancel()
		if err := cc.Acked(ctx, addr); err != nil {
			cfg.logger.Warn("ccnats: deleting the stash of a handled message", "subject", m.Subject, "err", err)
		}
	}
}
