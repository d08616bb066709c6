package ccwatermill

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/claimcheck"
)

// Middleware returns router middleware that rehydrates claim-checked
// messages before the handler sees them, for routers that receive from an
// undecorated subscriber. It is the way to consume in a Router: it runs in
// the handler's goroutine, so a message that needs no rehydration costs a
// header lookup and nothing more, where SubscriberDecorator adds a
// goroutine hand-off per message (see there). Use it or
// SubscriberDecorator, not both (both together are harmless, just
// redundant):
//
//	router.AddPublisherDecorators(ccwatermill.PublisherDecorator(cc))
//	router.AddMiddleware(ccwatermill.Middleware(cc))
//
// A message that cannot be rehydrated never reaches the handler: the
// checker decides (claimcheck.Checker.Decide) and the middleware
// translates: Redeliver returns the error, so the router nacks the message
// (and any Retry or PoisonQueue middleware outside this one sees the
// claim-checked message, ready to replay); Handled and Discard acknowledge
// it.
//
// With claimcheck.DeleteAfterAck the stash is deleted once the message is
// acknowledged: the router acks a message only after its handler returned
// no error and what the handler produced was published, and nacks it when
// that publish fails, so the stash of a message that will come back is
// kept for it. A goroutine waits for that verdict and ends with it (the
// router gives every message one); outside a router, ack or nack each
// message the middleware's handler returns from.
func Middleware(c *claimcheck.Checker) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			addr, d, err := rehydrate(c, message.SubscribeTopicFromCtx(msg.Context()), msg)
			switch d {
			case claimcheck.Redeliver:
				return nil, err // the router nacks it
			case claimcheck.Handled, claimcheck.Discard:
				return nil, nil // the router acks it
			}
			produced, err := h(msg)
			if err == nil && addr != "" && c.DeletesAfterAck() {
				go deleteOnceAcked(c, msg, addr)
			}
			return produced, err
		}
	}
}

// rehydrate restores msg in place (claimcheck.RehydrateInPlace) and returns
// the checker's decision.
func rehydrate(c *claimcheck.Checker, topic string, msg *message.Message) (string, claimcheck.Decision, error) {
	return c.RehydrateInPlace(msg.Context(), claimcheck.Incoming{
		Topic: topic, Body: (*[]byte)(&msg.Payload), Headers: claimcheck.MapHeaders(msg.Metadata), Message: msg,
	})
}

// deleteOnceAcked deletes msg's stash once msg is acked; it ends at the
// ack or the nack. A failed delete leaves the stash to its TTL; the
// checker's observer has reported it, and the message itself was handled.
func deleteOnceAcked(c *claimcheck.Checker, msg *message.Message, addr string) {
	select {
	case <-msg.Acked():
		_ = c.Acked(context.WithoutCancel(msg.Context()), addr)
	case <-msg.Nacked():
	}
}
