package ccsqs

import (
	"log/slog"
)

// An Option configures New. What happens to a message that cannot be
// rehydrated is the checker's policy (claimcheck.Checker.Decide), not an
// option here.
type Option interface{ apply(*config) }

type config struct {
	maxBytes int
	logger   *slog.Logger
}

func newConfig() config {
	return config{maxBytes: DefaultMaxMessageBytes, logger: slog.Default()}
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMaxMessageBytes sets the size limit of one message and of one batch
// (DefaultMaxMessageBytes): set it to the queue's MaximumMessageSize when
// that is lower.
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxBytes = n
		}
	})
}

// WithLogger sets the logger that reports what ReceiveMessage cannot
// return: a message that could not be rehydrated, a failed delete or
// visibility change (slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}
