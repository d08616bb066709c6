// Package ccnats claim-checks NATS messages, core and JetStream.
//
// NATS refuses a message over the server's max_payload (1 MiB by default:
// "nats: maximum payload exceeded"). With ccnats, a publisher stores a body
// over the claimcheck.Checker's threshold in a stash and sends its address
// instead, with the contract in NATS headers; a consumer reads the stash
// back before the application's handler sees the message. JetStream can
// hold the stashes too (the nats:// backend), so nothing but NATS is needed.
//
// # Publishing
//
// NewConn wraps a *nats.Conn: Publish, PublishMsg, Request, RequestMsg,
// Respond and RespondMsg, each with a context for the stash write (and, for
// requests, for the wait). NewJetStream wraps a jetstream.JetStream and is
// one: Publish, PublishMsg, PublishAsync and PublishMsgAsync are
// claim-checked, everything else is passed through. A stash is written
// before the message is sent, and a failure to write it is returned (a
// *claimcheck.Error that unwraps to the stash error: errors.Is(err,
// stash.ErrTooLarge), ...) with nothing sent. The caller's *nats.Msg is
// never changed. Both refuse a connection whose server does not support
// headers (ErrHeadersNotSupported).
//
// # The server's max_payload
//
// Every publisher also claim-checks a message that is under the checker's
// threshold but over the connection's max_payload ((*nats.Conn).MaxPayload;
// the body and the header block, as Header.WireSize counts it), so that a
// server configured below the threshold (64 KiB, say) does not refuse what
// claimstash can carry. The policy still decides: with the checker's mode
// Never, or the producer's claimstash-offload: never, the message goes out
// as it is and NATS refuses it (nats.ErrMaxPayload); a message already
// claim-checked is never claim-checked again. The AWS pointer contract
// offloads such messages too. A reference that could not fit max_payload
// whatever its address (the producer's headers alone are too big) is
// refused before its stash is written, with a *claimcheck.Error matching
// nats.ErrMaxPayload; one that misses only by its address's length is
// refused by NATS after the write, and its stash is left to its TTL.
// Headers that JetStream's publish options add (a message ID, an
// expectation) come after the check: a message within their size of
// max_payload is still refused.
//
// A publisher keeps the max_payload it last read, so that a message below
// the threshold costs an atomic load, not nats.go's lock. After a
// reconnect to a server with a smaller max_payload, the first message over
// it is refused by nats.go (nothing is sent), and the publisher reads the
// new value and sends it again, claim-checked; the checker's observer then
// sees that message passed (OpPass) and then offloaded.
//
// # Drop-in for nats.go
//
// WrapConn wraps a *nats.Conn in a WrappedConn with nats.go's own method
// set, so that an existing pipeline changes in one line:
//
//	raw, err := nats.Connect(url)            // was: nc, err := nats.Connect(url)
//	nc, err := ccnats.WrapConn(raw, checker) // new; the rest is unchanged
//
// Publish, PublishMsg, Request, RequestMsg (and their forms with a context
// or a reply subject) are claim-checked; Subscribe, QueueSubscribe,
// ChanSubscribe, SubscribeSync and the rest deliver rehydrated messages, and
// the Subscription they return rehydrates in NextMsg, Fetch and FetchBatch.
// nc.JetStream() is the legacy JetStream context, claim-checked the same
// way (JetStreamContext). WrappedConn.Rehydrate does one *nats.Msg that
// arrived some other way. A message whose stash cannot be read never
// reaches the application: a JetStream one is settled as the checker
// decides (below), a core one is dropped and logged.
//
// # Consuming
//
// MsgHandler decorates a nats.MsgHandler for core subscriptions and queue
// groups (Conn.Subscribe and Conn.QueueSubscribe use it); the message is
// rehydrated in place. Core NATS has no redelivery: a message whose stash
// cannot be read is not handed to the handler, goes to the checker's
// OnRehydrateFailure handler if it is permanent, and is otherwise logged and
// gone.
//
// For JetStream, MessageHandler decorates the handler of Consumer.Consume,
// Messages the iterator of Consumer.Messages, and Batch the result of
// Consumer.Fetch; Rehydrate does one message. The application receives a
// view of the message whose Data is the payload and whose Headers no longer
// hold the contract; Ack, Nak, Term and Metadata act on the message as it
// was delivered. A message whose stash cannot be read never reaches the
// application. The checker decides what it means (claimcheck.Checker.Decide,
// given the delivery count) and the decorators translate: Redeliver is
// NakWithDelay of the checker's RetryDelay (claimcheck.DefaultRetryDelay), so
// JetStream redelivers it within the consumer's MaxDeliver; Handled (its
// OnRehydrateFailure handler took it) is Ack; Discard (claimcheck.DiscardAfter)
// is Term. The decorators have no failure options of their own.
//
// With claimcheck.DeleteAfterAck, the view's Ack and DoubleAck delete the
// stash once the server has confirmed the ack (Ack then waits for it, as
// DoubleAck does): an ack that is only queued on the connection may never
// arrive, and the redelivery needs the stash. A core NATS message, which
// has no ack, has its stash deleted once its handler returns, or, where
// there is no handler (NextMsg, ChanSubscribe), once it is handed to the
// application; a failed delete is logged and leaves the stash to its TTL.
//
// # Headers
//
// NATS headers are case-sensitive, and the contract's names are lowercase
// ("claimstash-version", "claimstash-size"): Header writes them exactly as
// written, like nats.Header's own methods, and reads them so or under their
// canonical names ("Claimstash-Version"), which a hop that canonicalises
// names leaves (nats.go before v1.19 on Header.Set, an HTTP bridge): such a
// reference is rehydrated, never handed on with its address as the payload.
// The publishers read only the exact names. Producers' headers
// cross unchanged, several values per key included. Any NATS client can
// take part without claimstash: `nats sub` shows a reference's headers and
// its body, the address, and a reference sent by hand is rehydrated like
// one from ccnats:
//
//	nats pub orders 'nats://default/orders.3f0a…' -H claimstash-version:1 -H claimstash-size:5242880
//
// # Options
//
// Every wrapper and decorator, WrapConn included, takes the same Options:
// WithContext and WithTimeout (DefaultTimeout) bound the stash I/O done
// where NATS gives no context (in handlers and in the async publishes);
// WithLogger reports what cannot be returned.
package ccnats
