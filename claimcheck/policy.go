package claimcheck

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// DefaultRetryDelay is how long a transport that can delay redelivery
// (JetStream's NakWithDelay) waits before a message whose stash could not
// be read comes back.
const DefaultRetryDelay = 5 * time.Second

// The failure policy lives here, in one place: the checker decides what a
// message that cannot be rehydrated means (Decide), and each transport
// translates the Decision into its own ack, nack, term or commit. No
// transport has failure options of its own.

// A Decision is what the checker decided for a message that could not be
// rehydrated. The message never reaches the application's handler.
type Decision int

const (
	// Deliver: the message was rehydrated (or was not claim-checked): hand
	// it to the application. RehydrateInPlace returns it; Decide never does.
	Deliver Decision = iota
	// Redeliver: the message is to come back. JetStream: NakWithDelay
	// (RetryDelay). Watermill: Nack. Kafka consumer group: the claim stops
	// and nothing past the message is committed. Core NATS, which cannot
	// redeliver: the message is lost, and the transport logs it. It is the
	// decision for every transient failure, and by default for all.
	Redeliver
	// Handled: the OnRehydrateFailure handler took the message (a poison
	// topic, a record for replay): acknowledge it. JetStream and Watermill:
	// Ack. Kafka: skip it, so later messages may be committed past it.
	Handled
	// Discard: the message can never be rehydrated and the checker was told
	// to give up on such messages (DiscardAfter): JetStream: Term. Watermill:
	// Ack. Kafka: skip it.
	Discard
)

func (d Decision) String() string {
	switch d {
	case Deliver:
		return "deliver"
	case Redeliver:
		return "redeliver"
	case Handled:
		return "handled"
	case Discard:
		return "discard"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// A Failure is a claim-checked message that could not be rehydrated, as it
// arrived: Body is the address, Headers still carry the contract.
type Failure struct {
	Topic   string
	Body    []byte
	Headers Headers
	// Err is the *Error Rehydrate returned; errors.Is sees its cause
	// (stash.ErrNotFound for a stash that is gone, ErrNotAllowed, ...).
	Err error
	// Deliveries is how often the message has been delivered, this time
	// included, where the transport counts (JetStream); 0 where it does not.
	Deliveries int
	// Message is the transport's own message (*message.Message for
	// Watermill, *sarama.ConsumerMessage, *nats.Msg, jetstream.Msg), for
	// handlers that republish it elsewhere. It may be nil.
	Message any
}

// A FailureHandler takes a message that can never be rehydrated. Returning
// nil means the handler dealt with it (published it to a poison topic,
// recorded it for replay): the decision is Handled. Returning an error
// (f.Err itself, typically) leaves the decision to the rest of the policy:
// Discard under DiscardAfter, Redeliver otherwise.
type FailureHandler func(ctx context.Context, f Failure) error

// OnRehydrateFailure routes messages that can never be rehydrated (a stash
// that expired or was deleted, a refused address, a tampered payload: see
// IsPermanent) to h. Transient failures (a store that is down, a cancelled
// context) never reach h: they are redelivered, because routing them
// elsewhere would divert good messages during an outage.
func OnRehydrateFailure(h FailureHandler) Option {
	return option(func(c *Checker) error { c.onFailure = h; return nil })
}

// DiscardAfter gives up on a message that can never be rehydrated once it
// has been delivered deliveries times (Failure.Deliveries): the decision is
// Discard instead of Redeliver. Where the transport does not count
// deliveries, a message is discarded at once if deliveries is 1 or less,
// and never otherwise. An OnRehydrateFailure handler, when it takes the
// message, comes first. By default nothing is discarded, so a stash that is
// written late, or a store that is briefly inconsistent, still gets its
// message through.
//
// A message in a later version of the contract than this build reads
// (ErrUnsupportedVersion with a higher version number: its producer was
// upgraded first) is never discarded, because an upgraded consumer reads
// it: it is redelivered until this consumer is upgraded. An
// OnRehydrateFailure handler still sees it, and may take it.
func DiscardAfter(deliveries int) Option {
	return option(func(c *Checker) error { c.discardAt = max(deliveries, 1); return nil })
}

// WithRetryDelay sets how long a transport that can delay redelivery waits
// before a Redeliver'ed message comes back (DefaultRetryDelay).
func WithRetryDelay(d time.Duration) Option {
	return option(func(c *Checker) error {
		if d < 0 {
			return errors.New("claimcheck: negative retry delay")
		}
		c.retryDelay = d
		return nil
	})
}

// RetryDelay is the delay of WithRetryDelay.
func (c *Checker) RetryDelay() time.Duration { return c.retryDelay }

// Decide applies the failure policy to a message whose Rehydrate failed and
// returns the decision with the error to report (nil for Handled). Every
// transport calls it, and only translates the decision.
func (c *Checker) Decide(ctx context.Context, f Failure) (Decision, error) {
	if !IsPermanent(f.Err) {
		return Redeliver, f.Err
	}
	err := f.Err
	if c.onFailure != nil {
		if err = c.onFailure(ctx, f); err == nil {
			return Handled, nil
		}
	}
	if c.discardAt > 0 && !isNewerVersion(f.Err) && (f.Deliveries >= c.discardAt || f.Deliveries == 0 && c.discardAt <= 1) {
		return Discard, err
	}
	return Redeliver, err
}

// IsPermanent reports whether a rehydrate error means the message can never
// be rehydrated, however often it is redelivered: the stash is gone
// (stash.ErrNotFound, which ErrExpired matches), its bytes do not match
// (stash.ErrIntegrity), it is over a limit (stash.ErrTooLarge), or the
// message itself is bad (ErrNotAllowed, ErrMalformed, ErrUnsupportedVersion,
// stash.ErrInvalidAddress, stash.ErrUnsupported). Anything else, a backend
// that is down or a cancelled context among them, is transient.
func IsPermanent(err error) bool {
	for _, p := range []error{stash.ErrNotFound, stash.ErrIntegrity, stash.ErrTooLarge, stash.ErrInvalidAddress,
		stash.ErrUnsupported, ErrNotAllowed, ErrMalformed, ErrUnsupportedVersion} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// DeleteAfterAck makes Acked delete the stash of a message once it is
// acknowledged (Watermill: the router acked it, after publishing what its
// handler produced; JetStream: the server confirmed the Ack; core NATS:
// the handler returned, or the message was handed over where there is no
// handler; Kafka consumer group: the message was marked and
// its offset committed). A share link's stash, an inline address and an
// AWS pointer's object are never deleted. Use it only in single-consumer
// pipelines: with fan-out, or a second Kafka consumer group, the first
// consumer to ack would delete what the others still need. By default
// stashes live until their TTL.
//
// Stashes are content addressed, so without care two messages with the
// same body would share one stash, and acking the first would delete the
// second's. With DeleteAfterAck, Offload therefore gives every message a
// stash of its own: the name gets a random suffix ("orders-3kx…"), so the
// address differs even where the body does not, and each ack deletes only
// its own message's stash. The price is that duplicate bodies are stored
// once per message instead of once. (Reference counts kept in the stash's
// attributes were the alternative; they need a compare-and-swap that not
// every backend has across processes, and a crashed consumer would leave
// a count that never reaches zero.) The checker that offloads is the one
// that must have DeleteAfterAck; the consuming one deletes what it is
// told to.
func DeleteAfterAck() Option {
	return option(func(c *Checker) error { c.deleteOnAck = true; return nil })
}

// DeletesAfterAck reports whether the checker was built with DeleteAfterAck,
// so a transport can skip watching for acks when it does not.
func (c *Checker) DeletesAfterAck() bool { return c.deleteOnAck }

// An Incoming is a received message as a transport sees it, for
// RehydrateInPlace.
type Incoming struct {
	Topic string
	// Body points at the message's body: it is replaced by the payload when
	// the message is rehydrated, and left alone otherwise.
	Body *[]byte
	// Headers lose the contract headers when the message is rehydrated.
	Headers Headers
	// Deliveries and Message are passed on in the Failure (see there).
	Deliveries int
	Message    any
}

// RehydrateInPlace is what every transport does with a received message: a
// message that is not claim-checked is left as it is (Deliver, address "");
// a claim-checked one is rehydrated in place (Deliver, with its stash
// address for Acked); one that cannot be rehydrated is left as it arrived
// and the failure policy decides (see Decide), the error being the one to
// report (nil when Handled). The transport translates the decision.
func (c *Checker) RehydrateInPlace(ctx context.Context, m Incoming) (address string, d Decision, err error) {
	if c == nil || c.engine == nil {
		return "", Redeliver, &Error{Op: "rehydrate", Topic: m.Topic, Err: c.unusable(m.Headers)}
	}
	if m.Headers == nil || !c.marked(m.Headers) {
		c.observer.Observe(ctx, Event{Op: OpPlain, Topic: m.Topic, Size: int64(len(*m.Body)), Headers: m.Headers})
		return "", Deliver, nil
	}
	out, address, err := c.Rehydrate(ctx, m.Topic, *m.Body, m.Headers)
	if err == nil {
		*m.Body = out
		return address, Deliver, nil
	}
	d, err = c.Decide(ctx, Failure{Topic: m.Topic, Body: *m.Body, Headers: m.Headers, Err: err, Deliveries: m.Deliveries, Message: m.Message})
	return address, d, err
}

// uniqueName appends a random suffix to a stash name, truncating the name
// so that the result stays within stash.MaxNameLength.
func uniqueName(name string) string {
	suffix := "-" + strings.ToLower(rand.Text())
	if len(name) > stash.MaxNameLength-len(suffix) {
		name = name[:stash.MaxNameLength-len(suffix)]
	}
	return name + suffix
}
