package ccsarama

import (
	"context"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

// ProducerInterceptor is the drop-in path: add it to
// config.Producer.Interceptors and every producer built from the config
// claim-checks what it sends. Prefer the wrappers (WrapSyncProducer,
// WrapAsyncProducer) where you can; the interceptor pays for being drop-in:
//
//   - sarama calls OnSend on the async producer's dispatcher goroutine, the
//     one every message of every topic goes through, so a slow stash write
//     stalls the whole producer for as long as it takes (bounded by
//     WithTimeout);
//   - OnSend cannot return an error and has no context. When the stash write
//     fails, the message is left exactly as it was and the failure is
//     reported (OnProduceError, or logged). The message then goes on
//     unchanged: if it is over Producer.MaxMessageBytes or the topic's
//     limit, it fails with sarama's or the broker's own size error; if not,
//     it is produced as it is, un-offloaded. A message is never produced
//     with a reference to a stash that was not written;
//   - the config's Version must be V0_11_0_0 or newer (headers); sarama
//     refuses a claim-checked message on an older one;
//   - it does not see the config: give it Producer.MaxMessageBytes with
//     WithMaxMessageBytes to claim-check what would not fit it, as the
//     wrappers do; without, it offloads by the checker's threshold alone.
//
// sarama runs interceptors again on retries; a message already
// claim-checked is never offloaded twice.
type ProducerInterceptor struct {
	c *claimcheck.Checker
	o *options
}

var _ sarama.ProducerInterceptor = (*ProducerInterceptor)(nil)

// NewProducerInterceptor returns an interceptor offloading through c.
// Options: WithTimeout, WithMaxMessageBytes, OnProduceError, WithLogger.
func NewProducerInterceptor(c *claimcheck.Checker, opts ...InterceptorOption) *ProducerInterceptor {
	return &ProducerInterceptor{c: c, o: interceptorOptions(opts)}
}

// OnSend implements sarama.ProducerInterceptor.
func (i *ProducerInterceptor) OnSend(msg *sarama.ProducerMessage) {
	ctx, cancel := i.o.withTimeout(context.Background())
	defer cancel()
	if err := offload(ctx, i.c, i.o.maxMessageBytes, msg); err != nil {
		if i.o.onProduceError != nil {
			i.o.onProduceError(msg, err)
			return
		}
		i.o.logger.ErrorContext(ctx, "ccsarama: offload failed, message left as it was", "topic", msg.Topic, "err", err)
	}
}

// ConsumerInterceptor is the drop-in path on the consumer side: add it to
// config.Consumer.Interceptors and every message is rehydrated before it
// reaches a Messages channel. Prefer WrapConsumerGroupHandler where you
// can: an interceptor cannot stop or hold back a message.
//
// The guarantee: a message whose stash cannot be read is delivered exactly
// as it came from Kafka, still claim-checked: its value is the stash
// address, and the headers claimstash-version and claimstash-size are still
// there (or, with claimcheck.ContractAWSPointer, the pointer and its
// ExtendedPayloadSize header). The checker's policy still runs (claimcheck.Checker.Decide: its
// OnRehydrateFailure handler sees permanent failures), but an interceptor
// can only report: a failure it does not see handled is logged. Nothing ever
// presents an address as the payload: check IsClaimChecked(msg) before
// processing a message, and do not mark a message for which it is true
// unless you mean to skip it. A message that was not claim-checked reads
// false.
//
// sarama calls OnConsume on the partition's consumer goroutine, so a slow
// stash read holds back that partition (bounded by WithTimeout). The
// checker's DeleteAfterAck cannot apply (an interceptor never learns of a
// mark); a checker built with it gets a warning on the logger.
type ConsumerInterceptor struct {
	c *claimcheck.Checker
	o *options
}

var _ sarama.ConsumerInterceptor = (*ConsumerInterceptor)(nil)

// NewConsumerInterceptor returns an interceptor rehydrating through c.
// Options: WithTimeout, WithLogger.
func NewConsumerInterceptor(c *claimcheck.Checker, opts ...ConsumerOption) *ConsumerInterceptor {
	o := consumerOptions(opts)
	if c.DeletesAfterAck() {
		o.logger.Warn("ccsarama: the checker's DeleteAfterAck is not applied by a ConsumerInterceptor (use WrapConsumerGroupHandler); stashes live until their TTL")
	}
	return &ConsumerInterceptor{c: c, o: o}
}

// OnConsume implements sarama.ConsumerInterceptor.
func (i *ConsumerInterceptor) OnConsume(msg *sarama.ConsumerMessage) {
	ctx, cancel := i.o.withTimeout(context.Background())
	defer cancel()
	if _, d, err := rehydrate(ctx, i.c, msg); d != claimcheck.Deliver && d != claimcheck.Handled {
		i.o.logger.ErrorContext(ctx, "ccsarama: rehydrate failed, message delivered claim-checked",
			"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "decision", d.String(), "err", err)
	}
}

// rehydrate restores msg in place (claimcheck.RehydrateInPlace); on failure
// msg is left as it was and the checker's decision is returned.
func rehydrate(ctx context.Context, c *claimcheck.Checker, msg *sarama.ConsumerMessage) (string, claimcheck.Decision, error) {
	return c.RehydrateInPlace(ctx, claimcheck.Incoming{
		Topic: msg.Topic, Body: &msg.Value, Headers: ConsumerHeaders(msg), Message: msg,
	})
}
