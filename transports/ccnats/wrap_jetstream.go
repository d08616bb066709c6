package ccnats

import (
	"github.com/nats-io/nats.go"
)

// JetStreamContext is nats.go's legacy JetStream context (nc.JetStream())
// with claim-checked publishes and subscriptions: Publish, PublishMsg,
// PublishAsync and PublishMsgAsync offload first; Subscribe,
// QueueSubscribe, ChanSubscribe, ChanQueueSubscribe, SubscribeSync,
// QueueSubscribeSync and PullSubscribe (with Subscription.Fetch and
// FetchBatch) deliver rehydrated messages. Streams, consumers, key-value
// and object stores are the embedded context's, not claim-checked.
//
// A message whose stash cannot be read never reaches the application: as
// the checker decides, it is Ack'ed (its failure handler took it),
// terminated (claimcheck.DiscardAfter) or Nak'ed with the checker's
// RetryDelay for JetStream to redeliver within the consumer's MaxDeliver;
// the error is logged. A callback subscription without
// nats.ManualAck still acknowledges each message its callback handled, as
// nats.go does; a message settled here is not acknowledged again.
type JetStreamContext struct {
	nats.JetStreamContext
	c *WrappedConn
}

// JetStream returns the claim-checked legacy JetStream context of the
// connection.
func (c *WrappedConn) JetStream(opts ...nats.JSOpt) (*JetStreamContext, error) {
	js, err := c.Conn.JetStream(opts...)
	if err != nil {
		return nil, err
	}
	if c.cc.DeletesAfterAck() {
		c.cfg.logger.Warn("ccnats: the checker deletes stashes after ack, but JetStream messages are acknowledged by nats.go directly: their stashes are left to their TTL")
	}
	return &JetStreamContext{JetStreamContext: js, c: c}, nil
}

// Unwrap returns the wrapped context.
func (j *JetStreamContext) Unwrap() nats.JetStreamContext { return j.JetStreamContext }

// Publish publishes data on subj and waits for the acknowledgement,
// offloading it first if the checker says so (the stash write is bounded
// by WithContext and WithTimeout). A stash that cannot be written is an
// error and nothing is published.
func (j *JetStreamContext) Publish(subj string, data []byte, opts ...nats.PubOpt) (*nats.PubAck, error) {
	if pass(j.c.cfg.ctx, j.c.mp, j.c.cc, subj, data) {
		ack, err := j.JetStreamContext.Publish(subj, data, opts...)
		if !j.c.mp.retry(err, j.c.cc, data, nil) {
			return ack, err
		}
	}
	return j.PublishMsg(&nats.Msg{Subject: subj, Data: data}, opts...)
}

// PublishMsg is Publish for a message with headers. m itself is not
// changed.
func (j *JetStreamContext) PublishMsg(m *nats.Msg, opts ...nats.PubOpt) (*nats.PubAck, error) {
	if passes(j.c.cfg.ctx, j.c.mp, j.c.cc, m) {
		ack, err := j.JetStreamContext.PublishMsg(m, opts...)
		if !j.c.mp.retry(err, j.c.cc, m.Data, m.Header) {
			return ack, err
		}
	}
	out, err := j.c.offload(m)
	if err != nil {
		return nil, err
	}
	return j.JetStreamContext.PublishMsg(out, opts...)
}

// PublishAsync publishes without waiting for the acknowledgement; the
// stash, if any, is written before it returns. The future's Msg is the
// message as sent (the stash address, for an offloaded one).
func (j *JetStreamContext) PublishAsync(subj string, data []byte, opts ...nats.PubOpt) (nats.PubAckFuture, error) {
	if pass(j.c.cfg.ctx, j.c.mp, j.c.cc, subj, data) {
		f, err := j.JetStreamContext.PublishAsync(subj, data, opts...)
		if !j.c.mp.retry(err, j.c.cc, data, nil) {
			return f, err
		}
	}
	return j.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data}, opts...)
}

// PublishMsgAsync is PublishAsync for a message with headers.
func (j *JetStreamContext) PublishMsgAsync(m *nats.Msg, opts ...nats.PubOpt) (nats.PubAckFuture, error) {
	if passes(j.c.cfg.ctx, j.c.mp, j.c.cc, m) {
		f, err := j.JetStreamContext.PublishMsgAsync(m, opts...)
		if !j.c.mp.retry(err, j.c.cc, m.Data, m.Header) {
			return f, err
		}
	}
	out, err := j.c.offload(m)
	if err != nil {
		return nil, err
	}
	return j.JetStreamContext.PublishMsgAsync(out, opts...)
}

// Subscribe creates a push subscription whose messages reach cb
// rehydrated.
func (j *JetStreamContext) Subscribe(subj string, cb nats.MsgHandler, opts ...nats.SubOpt) (*Subscription, error) {
	return j.c.sub(j.JetStreamContext.Subscribe(subj, j.c.handler(cb), opts...))
}

// QueueSubscribe is Subscribe in queue group queue.
func (j *JetStreamContext) QueueSubscribe(subj, queue string, cb nats.MsgHandler, opts ...nats.SubOpt) (*Subscription, error) {
	return j.c.sub(j.JetStreamContext.QueueSubscribe(subj, queue, j.c.handler(cb), opts...))
}

// ChanSubscribe delivers the messages of a push subscription to ch,
// rehydrated, as WrappedConn.ChanSubscribe does; the application
// acknowledges them, as with nats.go's ChanSubscribe. A message that
// cannot be sent because the subscription closed is Nak'ed.
func (j *JetStreamContext) ChanSubscribe(subj string, ch chan *nats.Msg, opts ...nats.SubOpt) (*Subscription, error) {
	opts = append(opts[:len(opts):len(opts)], nats.ManualAck())
	return j.c.sub(j.JetStreamContext.Subscribe(subj, j.c.chanHandler(ch), opts...))
}

// ChanQueueSubscribe is ChanSubscribe in queue group queue.
func (j *JetStreamContext) ChanQueueSubscribe(subj, queue string, ch chan *nats.Msg, opts ...nats.SubOpt) (*Subscription, error) {
	opts = append(opts[:len(opts):len(opts)], nats.ManualAck())
	return j.c.sub(j.JetStreamContext.QueueSubscribe(subj, queue, j.c.chanHandler(ch), opts...))
}

// SubscribeSync creates a push subscription for NextMsg, which returns
// rehydrated messages.
func (j *JetStreamContext) SubscribeSync(subj string, opts ...nats.SubOpt) (*Subscription, error) {
	return j.c.sub(j.JetStreamContext.SubscribeSync(subj, opts...))
}

// QueueSubscribeSync is SubscribeSync in queue group queue.
func (j *JetStreamContext) QueueSubscribeSync(subj, queue string, opts ...nats.SubOpt) (*Subscription, error) {
	return j.c.sub(j.JetStreamContext.QueueSubscribeSync(subj, queue, opts...))
}

// PullSubscribe creates a pull subscription whose Fetch and FetchBatch
// return rehydrated messages.
func (j *JetStreamContext) PullSubscribe(subj, durable string, opts ...nats.SubOpt) (*Subscription, error) {
	return j.c.sub(j.JetStreamContext.PullSubscribe(subj, durable, opts...))
}
