package ccsqs

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// An Option configures New (and NewSNS, where it says so).
type Option interface{ apply(*config) }

type config struct {
	maxBytes        int
	logger          *slog.Logger
	onError         func(ctx context.Context, m types.Message, err error)
	retryVisibility int32 // seconds; -1: leave the queue's
}

func newConfig() config {
	c := config{maxBytes: DefaultMaxMessageBytes, logger: slog.Default(), retryVisibility: -1}
	c.onError = func(ctx context.Context, m types.Message, err error) {
		c.logger.ErrorContext(ctx, "ccsqs: message not delivered", "message_id", deref(m.MessageId), "err", err)
	}
	return c
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMaxMessageBytes sets the size limit of one message and of one batch
// (DefaultMaxMessageBytes): set it to the queue's MaximumMessageSize when
// that is lower. For SNS it is SNS's 262,144 bytes by default.
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxBytes = n
		}
	})
}

// WithLogger sets the logger of the default error handler and of warnings
// (slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// OnReceiveError sets what ReceiveMessage does with the error of a message
// it could not rehydrate, and did not return; m is the message as it was
// received. The default logs it at Error.
func OnReceiveError(f func(ctx context.Context, m types.Message, err error)) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.onError = f
		}
	})
}

// WithRetryVisibility makes ReceiveMessage set the visibility timeout of a
// message it could not rehydrate to seconds (0 makes it visible again at
// once), so that it is retried sooner than the queue's visibility timeout.
func WithRetryVisibility(seconds int32) Option {
	return optionFunc(func(c *config) {
		if seconds >= 0 {
			c.retryVisibility = seconds
		}
	})
}
