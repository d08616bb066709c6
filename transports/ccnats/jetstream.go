package ccnats

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
)

// JetStream is a jetstream.JetStream whose publishes are claim-checked: a
// message over the checker's threshold, or over the connection's
// max_payload, is stored first and published as its stash address, with
// the contract in headers. Everything else (streams,
// consumers, key-value and object stores) is the wrapped JetStream's.
//
// A publish that fails after its stash was written leaves the stash to its
// TTL; publishing the same body again reuses it (stash addresses are
// content-addressed), so retrying, with jetstream.WithMsgID for
// deduplication, is safe.
type JetStream struct {
	jetstream.JetStream
	mp  *maxPayload // of js.Conn()
	cc  *claimcheck.Checker
	cfg base
}

var _ jetstream.JetStream = (*JetStream)(nil)

// NewJetStream wraps js. It refuses one whose connection's server does not
// support headers (ErrHeadersNotSupported).
func NewJetStream(js jetstream.JetStream, cc *claimcheck.Checker, opts ...Option) (*JetStream, error) {
	if js == nil || cc == nil {
		return nil, errors.New("ccnats: NewJetStream: nil JetStream or checker")
	}
	nc := js.Conn()
	if nc == nil || !nc.HeadersSupported() {
		return nil, ErrHeadersNotSupported
	}
	return &JetStream{JetStream: js, mp: newMaxPayload(nc), cc: cc, cfg: newBase(opts)}, nil
}

// Unwrap returns the wrapped JetStream.
func (j *JetStream) Unwrap() jetstream.JetStream { return j.JetStream }

// Checker returns the claim checker.
func (j *JetStream) Checker() *claimcheck.Checker { return j.cc }

// Publish publishes payload on subject and waits for the acknowledgement,
// offloading it first if the checker says so. A stash that cannot be
// written is an error (a *claimcheck.Error) and nothing is published.
func (j *JetStream) Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if pass(ctx, j.mp, j.cc, subject, payload) {
		ack, err := j.JetStream.Publish(ctx, subject, payload, opts...)
		if !j.mp.retry(err, j.cc, payload, nil) {
			return ack, err
		}
	}
	return j.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload}, opts...)
}

// PublishMsg is Publish for a message with headers. msg itself is not
// changed.
func (j *JetStream) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if passes(ctx, j.mp, j.cc, msg) {
		ack, err := j.JetStream.PublishMsg(ctx, msg, opts...)
		if !j.mp.retry(err, j.cc, msg.Data, msg.Header) {
			return ack, err
		}
	}
	out, err := offload(ctx, j.mp, j.cc, msg)
	if err != nil {
		return nil, err
	}
	return j.JetStream.PublishMsg(ctx, out, opts...)
}

// PublishAsync publishes without waiting for the acknowledgement. The stash,
// if any, is written before it returns, under the WithContext context and
// WithTimeout bound; only the publish itself is asynchronous.
func (j *JetStream) PublishAsync(subject string, payload []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if pass(j.cfg.ctx, j.mp, j.cc, subject, payload) {
		f, err := j.JetStream.PublishAsync(subject, payload, opts...)
		if !j.mp.retry(err, j.cc, payload, nil) {
			return f, err
		}
	}
	return j.PublishMsgAsync(&nats.Msg{Subject: subject, Data: payload}, opts...)
}

// PublishMsgAsync is PublishAsync for a message with headers.
func (j *JetStream) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if passes(j.cfg.ctx, j.mp, j.cc, msg) {
		f, err := j.JetStream.PublishMsgAsync(msg, opts...)
		if !j.mp.retry(err, j.cc, msg.Data, msg.Header) {
			return f, err
		}
	}
	ctx, cancel := j.cfg.context()
	out, err := offload(ctx, j.mp, j.cc, msg)
	cancel()
	if err != nil {
		return nil, err
	}
	return j.JetStream.PublishMsgAsync(out, opts...)
}
