package ccwatermill

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/claimcheck"
)

// Middleware returns router middleware that rehydrates claim-checked
// messages before the handler sees them, for routers that receive from an
// undecorated subscriber. Use it or SubscriberDecorator, not both (both
// together are harmless, just redundant).
//
// A message that cannot be rehydrated never reaches the handler: the
// middleware returns the error, so the router nacks the message (and any
// Retry or PoisonQueue middleware outside this one sees the claim-checked
// message, ready to replay), unless the checker's OnRehydrateFailure handler
// dealt with it, in which case the message is acknowledged.
//
// With claimcheck.DeleteAfterAck the stash is deleted once the handler
// returns without error, just before the router acknowledges the message.
func Middleware(c *claimcheck.Checker) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			addr, err := rehydrate(c, message.SubscribeTopicFromCtx(msg.Context()), msg)
			if err != nil {
				if herr := c.RehydrateFailed(msg.Context(), failure(msg, err)); herr != nil {
					return nil, herr
				}
				return nil, nil
			}
			produced, err := h(msg)
			if err == nil && addr != "" && c.DeletesAfterAck() {
				// A failed delete leaves the stash to its TTL; the observer
				// has reported it, and the message itself was handled.
				_ = c.Acked(context.WithoutCancel(msg.Context()), addr)
			}
			return produced, err
		}
	}
}

// rehydrate restores msg in place. It returns the stash address ("" for a
// message that was not claim-checked). On error msg is unchanged.
func rehydrate(c *claimcheck.Checker, topic string, msg *message.Message) (string, error) {
	// A message that is not claim-checked comes back as it was, and the
	// checker's observer counts it (claimcheck.OpPlain); nothing is allocated.
	out, addr, err := c.Rehydrate(msg.Context(), topic, msg.Payload, claimcheck.MapHeaders(msg.Metadata))
	if err != nil {
		return addr, err
	}
	if addr != "" {
		msg.Payload = out
	}
	return addr, nil
}

func failure(msg *message.Message, err error) claimcheck.Failure {
	var topic string
	if e, ok := err.(*claimcheck.Error); ok {
		topic = e.Topic
	}
	return claimcheck.Failure{Topic: topic, Body: msg.Payload, Headers: claimcheck.MapHeaders(msg.Metadata), Err: err, Message: msg}
}
