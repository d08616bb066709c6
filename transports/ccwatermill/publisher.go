package ccwatermill

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/claimcheck"
)

// PublisherDecorator returns a decorator for Router.AddPublisherDecorators
// (or for wrapping a publisher by hand) that claim-checks every message the
// publisher sends: a message over the checker's threshold is stored in the
// stash first, and only once the stash is written does the message go out,
// its payload replaced by the address and the contract metadata set.
// Messages under the threshold are sent as they are.
//
// Messages are edited in place (Payload and Metadata), as Watermill allows a
// publisher to do; the stash write runs under the message's context. If a
// stash write fails, Publish returns that error and sends nothing: the
// messages before it are left claim-checked in place (their stashes
// written, kept to their TTL), the failed one and those after it as they
// were. A message that is already claim-checked is never claim-checked again, so
// decorating twice, or retrying a Publish, is harmless.
func PublisherDecorator(c *claimcheck.Checker) message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		return NewPublisher(pub, c), nil
	}
}

// NewPublisher wraps pub as PublisherDecorator does.
func NewPublisher(pub message.Publisher, c *claimcheck.Checker) message.Publisher {
	return &publisher{pub: pub, c: c}
}

type publisher struct {
	pub message.Publisher
	c   *claimcheck.Checker
}

var _ message.Publisher = (*publisher)(nil)

// Publish offloads each message that the policy selects, then publishes
// them all.
func (p *publisher) Publish(topic string, messages ...*message.Message) error {
	for _, msg := range messages {
		if err := Offload(p.c, topic, msg); err != nil {
			return err
		}
	}
	return p.pub.Publish(topic, messages...)
}

// Close closes the wrapped publisher.
func (p *publisher) Close() error { return p.pub.Close() }

// Offload applies c's policy to one outgoing message, in place. It is what
// the publisher decorator does to each message; use it where messages are
// sent by other means (a Router handler's produced messages go through the
// decorated publisher already).
//
// The size the checker compares counts the payload, the metadata and the
// message's UUID under its header name (uuidHeader), as the Kafka and NATS
// marshalers send it; the framing each broker adds to headers is left to
// the checker's margin.
func Offload(c *claimcheck.Checker, topic string, msg *message.Message) error {
	h := (*sized)(msg)
	if c.Pass(msg.Context(), topic, msg.Payload, h) {
		return nil // sent as it is: nothing to change, not even a nil map
	}
	if msg.Metadata == nil {
		// Offload may set headers; a nil map cannot take them.
		msg.Metadata = message.Metadata{}
	}
	out, addr, err := c.Offload(msg.Context(), topic, msg.Payload, h)
	if err != nil {
		return err
	}
	if addr != "" {
		msg.Payload = out
	}
	return nil
}

// uuidHeader is the header under which Watermill's Kafka and NATS
// marshalers send a message's UUID.
const uuidHeader = "_watermill_message_uuid"

// sized is a message's metadata as the checker sees it on the way out: its
// WireSize counts the UUID header the marshalers add. It is a pointer, so
// passing it as claimcheck.Headers allocates nothing.
type sized message.Message

func (m *sized) Get(k string) (string, bool) { v, ok := m.Metadata[k]; return v, ok }
func (m *sized) Set(k, v string)             { m.Metadata[k] = v }
func (m *sized) Del(k string)                { delete(m.Metadata, k) }

// WireSize counts the metadata's keys and values and the UUID header.
func (m *sized) WireSize() int {
	return claimcheck.MapHeaders(m.Metadata).WireSize() + len(uuidHeader) + len(m.UUID)
}
