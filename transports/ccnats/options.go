package ccnats

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults, in one place.
const (
	// DefaultTimeout bounds each stash read or write made where the caller
	// passes no context: in message handlers and in the async publishes.
	DefaultTimeout = time.Minute
	// DefaultNakDelay is how long JetStream waits before it redelivers a
	// message whose stash could not be read.
	DefaultNakDelay = 5 * time.Second
)

// Options are of three kinds, so that one meant for a JetStream consumer
// cannot be passed to a publisher: PublisherOption (NewConn, NewJetStream),
// HandlerOption (MsgHandler, Conn.Subscribe, Conn.QueueSubscribe) and
// ConsumerOption (MessageHandler, Messages, Batch, Rehydrate). An Option is
// all three.
type (
	// PublisherOption configures NewConn and NewJetStream.
	PublisherOption interface{ applyPublisher(*base) }
	// HandlerOption configures the core NATS handler decorator.
	HandlerOption interface {
		applyHandler(*handlerConfig)
		ConnOption
	}
	// ConsumerOption configures the JetStream consumer decorators.
	ConsumerOption interface {
		applyConsumer(*consumerConfig)
		ConnOption
	}
	// Option configures all of them.
	Option interface {
		PublisherOption
		HandlerOption
		ConsumerOption
	}
)

// base is what every kind of option can set.
type base struct {
	ctx     context.Context
	timeout time.Duration
	logger  *slog.Logger
}

func newBase() base {
	return base{ctx: context.Background(), timeout: DefaultTimeout, logger: slog.Default()}
}

// context returns the context for one stash operation made where the caller
// passed none.
func (b *base) context() (context.Context, context.CancelFunc) {
	if b.timeout <= 0 {
		return context.WithCancel(b.ctx)
	}
	return context.WithTimeout(b.ctx, b.timeout)
}

type handlerConfig struct {
	base
	onError func(*nats.Msg, error)
}

type consumerConfig struct {
	base
	onError   func(jetstream.Msg, error)
	nakDelay  time.Duration
	termAfter int // 0: never Term
}

type baseOption func(*base)

func (o baseOption) applyPublisher(b *base)          { o(b) }
func (o baseOption) applyHandler(c *handlerConfig)   { o(&c.base) }
func (o baseOption) applyConsumer(c *consumerConfig) { o(&c.base) }

type handlerOption func(*handlerConfig)

func (o handlerOption) applyHandler(c *handlerConfig) { o(c) }

type consumerOption func(*consumerConfig)

func (o consumerOption) applyConsumer(c *consumerConfig) { o(c) }

// WithContext sets the context that stash reads and writes run under where
// the API has none of its own (message handlers, PublishAsync): cancel it
// to abandon them at shutdown. context.Background() by default.
func WithContext(ctx context.Context) Option {
	return baseOption(func(b *base) {
		if ctx != nil {
			b.ctx = ctx
		}
	})
}

// WithTimeout bounds each of those stash operations (DefaultTimeout); zero
// or less means no bound beyond WithContext's context.
func WithTimeout(d time.Duration) Option { return baseOption(func(b *base) { b.timeout = d }) }

// WithLogger sets the logger of the default error handlers (slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return baseOption(func(b *base) {
		if l != nil {
			b.logger = l
		}
	})
}

// OnError sets what the core NATS handler decorator does with a message it
// could not rehydrate (the handler is not called for it) and with a failed
// delete after handling (claimcheck.DeleteAfterAck). Core NATS has no
// redelivery: once reported, the message is gone, so log it, count it, or
// respond to the requester. The default logs the error at Error level.
func OnError(f func(msg *nats.Msg, err error)) HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.onError = f })
}

// OnConsumeError sets what the JetStream decorators do with the error of a
// message they could not rehydrate, after they have settled it (Nak with a
// delay, or Term), and with a failed delete after an Ack. The default logs
// the error at Error level.
func OnConsumeError(f func(msg jetstream.Msg, err error)) ConsumerOption {
	return consumerOption(func(c *consumerConfig) { c.onError = f })
}

// NakDelay sets how long JetStream waits before redelivering a message whose
// stash could not be read (DefaultNakDelay). The consumer's MaxDeliver
// bounds how often it tries.
func NakDelay(d time.Duration) ConsumerOption {
	return consumerOption(func(c *consumerConfig) { c.nakDelay = d })
}

// TermIfGone makes the JetStream decorators Term a message, instead of
// Nak'ing it, once its stash is known gone (the error matches
// stash.ErrNotFound, which includes stash.ErrExpired) and the message has
// been delivered at least deliveries times; 1 or less terminates it at the
// first delivery. Without it a missing stash is retried like any other
// failure, so that a stash that is written late (or a backend that is
// briefly inconsistent) still gets its message through.
func TermIfGone(deliveries int) ConsumerOption {
	return consumerOption(func(c *consumerConfig) { c.termAfter = max(deliveries, 1) })
}
