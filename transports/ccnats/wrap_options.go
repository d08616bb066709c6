package ccnats

import (
	"github.com/nats-io/nats.go/jetstream"
)

// ConnOption configures WrapConn. Every HandlerOption (OnError) and every
// ConsumerOption (NakDelay, TermIfGone, OnConsumeError) is one, and so is
// every Option (WithContext, WithTimeout, WithLogger): the wrapper publishes,
// handles core messages and handles JetStream messages, so each applies to
// its own side of it.
type ConnOption interface{ applyConn(*connConfig) }

// connConfig is what WrapConn reads its options into: the core side (as
// MsgHandler's) and the JetStream side (as MessageHandler's).
type connConfig struct {
	core handlerConfig
	js   consumerConfig
}

func newConnConfig() connConfig {
	return connConfig{core: handlerConfig{base: newBase()}, js: consumerConfig{base: newBase(), nakDelay: DefaultNakDelay}}
}

func (o baseOption) applyConn(c *connConfig) { o(&c.core.base); o(&c.js.base) }

func (o handlerOption) applyConn(c *connConfig) { o(&c.core) }

func (o consumerOption) applyConn(c *connConfig) { o(&c.js) }

// finish fills in the defaults once every option is applied: core failures
// are logged, and JetStream failures go to OnConsumeError, else to OnError,
// else to the log.
func (c *connConfig) finish() {
	coreSet := c.core.onError != nil
	if !coreSet {
		c.core.onError = defaultCoreError(&c.core.base)
	}
	if c.js.onError != nil { // OnConsumeError
		return
	}
	if coreSet {
		f := c.core.onError
		c.js.onError = func(m jetstream.Msg, err error) {
			if lm, ok := m.(legacyMsg); ok {
				f(lm.m, err)
			}
		}
		return
	}
	l := c.js.logger
	c.js.onError = func(m jetstream.Msg, err error) {
		l.Error("ccnats: message not delivered to handler", "subject", m.Subject(), "err", err)
	}
}
