package ccnats

import (
	"context"
	"log/slog"
	"time"
)

// DefaultTimeout bounds each stash read or write made where the caller
// passes no context: in message handlers and in the async publishes.
const DefaultTimeout = time.Minute

// An Option configures any of the package's wrappers and decorators
// (NewConn, NewJetStream, MsgHandler, MessageHandler, Messages, Batch,
// Rehydrate): every one of them accepts every option. What happens to a
// message that cannot be rehydrated is the checker's policy
// (claimcheck.Checker.Decide), not an option here.
type Option interface {
	apply(*base)
}

// base is what the options set.
type base struct {
	ctx     context.Context
	timeout time.Duration
	logger  *slog.Logger
}

func newBase(opts []Option) base {
	if len(opts) == 0 {
		return defaultBase() // no allocation
	}
	b := defaultBase()
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(&b)
	}
	return b
}

func defaultBase() base {
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

type option func(*base)

func (o option) apply(b *base) { o(b) }

// WithContext sets the context that stash reads and writes run under where
// the API has none of its own (message handlers, PublishAsync): cancel it
// to abandon them at shutdown. context.Background() by default.
func WithContext(ctx context.Context) Option {
	return option(func(b *base) {
		if ctx != nil {
			b.ctx = ctx
		}
	})
}

// WithTimeout bounds each of those stash operations (DefaultTimeout); zero
// or less means no bound beyond WithContext's context.
func WithTimeout(d time.Duration) Option { return option(func(b *base) { b.timeout = d }) }

// WithLogger sets the logger that reports what cannot be returned: a
// message that could not be rehydrated and is not redelivered (core NATS),
// a failed Nak or Term, a failed delete after an ack (slog.Default()). The
// checker's observer (claimcheck.WithObserver) sees every failure too.
func WithLogger(l *slog.Logger) Option {
	return option(func(b *base) {
		if l != nil {
			b.logger = l
		}
	})
}
