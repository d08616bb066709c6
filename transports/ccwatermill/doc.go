// Package ccwatermill claim-checks Watermill messages: with it, a Watermill
// service publishes 50 MiB messages through any Pub/Sub whose broker caps
// messages at 1 MiB.
//
// Three pieces, all driven by one *claimcheck.Checker (the policy, the
// stash engine, the stores a consumer may read):
//
//   - PublisherDecorator (or NewPublisher) offloads each message the policy
//     selects before it is published; Publish returns the stash error and
//     sends nothing if a stash write fails.
//   - SubscriberDecorator (or NewSubscriber) rehydrates claim-checked
//     messages before they are delivered. It edits the subscriber's own
//     message in place, so Ack and Nack reach the broker; a message that
//     cannot be rehydrated is never delivered: the checker decides
//     (claimcheck.Checker.Decide) and the decorator nacks it (Redeliver) or
//     acks it (Handled, Discard). Close waits for its goroutines.
//   - Middleware rehydrates in a Router handler, for routers that receive
//     from an undecorated subscriber.
//
// In a Router, use PublisherDecorator (Router.AddPublisherDecorators) and
// Middleware (Router.AddMiddleware). SubscriberDecorator fits
// Router.AddSubscriberDecorators too, but like any subscriber decorator it
// owns a channel and hands each message from one goroutine to another,
// which costs 0.4 to 0.6 µs per message on a Go channel Pub/Sub even when
// nothing is rehydrated; Middleware runs in the handler's goroutine, and
// its cost is within the benchmark's noise. Outside a Router, where the application
// reads the subscriber's channel itself, SubscriberDecorator is the way.
//
// The decorators and the middleware are idempotent: a message already
// claim-checked is never claim-checked again. Messages under the threshold
// pass through untouched, payload and metadata, with no allocation added.
//
// The wire form is the claimcheck package's contract: the payload becomes
// the stash address, metadata "claimstash-version" and "claimstash-size"
// are added, the producer's metadata is kept. Errors are *claimcheck.Error
// values that unwrap to stash.ErrNotFound, stash.ErrIntegrity,
// claimcheck.ErrNotAllowed and the like.
//
// With claimcheck.DeleteAfterAck a stash is deleted once its message is
// acknowledged; leave it off (the default) when more than one consumer
// reads a topic, and where the subscriber may deliver an acknowledged
// message again: Watermill's Kafka subscriber commits an acknowledged
// offset after the ack (with sarama's auto-commit, its default, up to a
// second later), so a consumer that dies in between leaves the next one a
// replay whose stash is gone. For Kafka, ccsarama's consumer group handler wrapper
// deletes only after the commit (and with ccsarama.WithCommitCheck, only
// after the coordinator confirms it).
package ccwatermill
