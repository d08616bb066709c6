package ccsarama

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
)

// Defaults.
const (
	// DefaultTimeout bounds one stash write or read where sarama gives no
	// context (SendMessage, Input, interceptors).
	DefaultTimeout = 30 * time.Second
	// DefaultLanes is the number of upload lanes of the AsyncProducer.
	DefaultLanes = 8
	// DefaultReadAhead is how many messages of a claim or a partition the
	// consumer wrappers rehydrate at once.
	DefaultReadAhead = 8
	// DefaultReadAheadBytes bounds the declared payload bytes those
	// messages may hold at once.
	DefaultReadAheadBytes = 64 << 20
)

// ErrVersion is returned by the producer wrappers when config.Version is
// older than Kafka 0.11, the first with record headers (the contract
// needs them).
var ErrVersion = errors.New("ccsarama: claim-check needs record headers: config.Version must be V0_11_0_0 or newer")

// Options are of five kinds, so that one passed where it does not apply is
// a compile error (franz-go's style): a ProducerOption configures
// WrapSyncProducer and WrapAsyncProducer, a ConsumerOption every consumer
// wrapper and NewConsumerInterceptor, a HandlerOption
// WrapConsumerGroupHandler, a PartitionOption WrapConsumer and
// WrapPartitionConsumer, an InterceptorOption NewProducerInterceptor. A
// ConsumerOption is both a HandlerOption and a PartitionOption, and so is a
// ReadAheadOption (WithReadAhead, WithReadAheadBytes), which means nothing to
// an interceptor (it sees one message at a time). An Option (WithTimeout,
// WithLogger) is all of them.
type (
	// ProducerOption configures the producer wrappers.
	ProducerOption interface{ applyProducer(*options) }
	// ConsumerOption configures every consumer wrapper and the consumer
	// interceptor.
	ConsumerOption interface {
		HandlerOption
		PartitionOption
		applyConsumer(*options)
	}
	// HandlerOption configures the consumer group handler wrapper: every
	// ConsumerOption and ReadAheadOption.
	HandlerOption interface{ applyHandler(*options) }
	// PartitionOption configures the plain consumer wrappers (WrapConsumer,
	// WrapPartitionConsumer): every ConsumerOption and ReadAheadOption.
	PartitionOption interface{ applyPartition(*options) }
	// ReadAheadOption configures the read-ahead of the consumer group
	// handler wrapper and of the plain consumer wrappers.
	ReadAheadOption interface {
		HandlerOption
		PartitionOption
	}
	// InterceptorOption configures the producer interceptor.
	InterceptorOption interface{ applyInterceptor(*options) }
	// Option configures every wrapper and interceptor.
	Option interface {
		ProducerOption
		ConsumerOption
		HandlerOption
		InterceptorOption
	}
)

type anyOption func(*options)

func (f anyOption) applyProducer(o *options)    { f(o) }
func (f anyOption) applyConsumer(o *options)    { f(o) }
func (f anyOption) applyHandler(o *options)     { f(o) }
func (f anyOption) applyPartition(o *options)   { f(o) }
func (f anyOption) applyInterceptor(o *options) { f(o) }

type readAheadOption func(*options)

func (f readAheadOption) applyHandler(o *options)   { f(o) }
func (f readAheadOption) applyPartition(o *options) { f(o) }

type handlerOption func(*options)

func (f handlerOption) applyHandler(o *options) { f(o) }

type producerOption func(*options)

func (f producerOption) applyProducer(o *options) { f(o) }

type interceptorOption func(*options)

func (f interceptorOption) applyInterceptor(o *options) { f(o) }

type options struct {
	timeout         time.Duration
	lanes           int
	readAhead       int
	readAheadBytes  int64
	logger          *slog.Logger
	maxMessageBytes int // the interceptor's cap (WithMaxMessageBytes)
	onProduceError  func(msg *sarama.ProducerMessage, err error)
	commits         OffsetLister // WithCommitCheck
	group           string
}

func defaults() *options {
	return &options{timeout: DefaultTimeout, lanes: DefaultLanes, readAhead: DefaultReadAhead, readAheadBytes: DefaultReadAheadBytes}
}

func (o *options) finish() *options {
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.lanes < 1 {
		o.lanes = 1
	}
	if o.readAhead < 1 {
		o.readAhead = 1
	}
	if o.readAheadBytes < 1 {
		o.readAheadBytes = 1
	}
	return o
}

func producerOptions(opts []ProducerOption) *options {
	o := defaults()
	for _, f := range opts {
		if f == nil {
			continue // a nil option is none
		}
		f.applyProducer(o)
	}
	return o.finish()
}

func handlerOptions(opts []HandlerOption) *options {
	o := defaults()
	for _, f := range opts {
		if f == nil {
			continue // a nil option is none
		}
		f.applyHandler(o)
	}
	return o.finish()
}

func consumerOptions(opts []ConsumerOption) *options {
	o := defaults()
	for _, f := range opts {
		if f == nil {
			continue // a nil option is none
		}
		f.applyConsumer(o)
	}
	return o.finish()
}

func partitionOptions(opts []PartitionOption) *options {
	o := defaults()
	for _, f := range opts {
		if f == nil {
			continue // a nil option is none
		}
		f.applyPartition(o)
	}
	return o.finish()
}

func interceptorOptions(opts []InterceptorOption) *options {
	o := defaults()
	for _, f := range opts {
		if f == nil {
			continue // a nil option is none
		}
		f.applyInterceptor(o)
	}
	return o.finish()
}

// withTimeout derives the context of one stash operation.
func (o *options) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, o.timeout)
}

// WithTimeout bounds each stash write or read (DefaultTimeout); 0 means no
// bound beyond the caller's context. All wrappers and interceptors.
func WithTimeout(d time.Duration) Option { return anyOption(func(o *options) { o.timeout = d }) }

// WithLanes sets how many messages the AsyncProducer offloads at once
// (DefaultLanes). Messages are spread over lanes by topic and key (by
// topic and partition when they have no key), and each lane keeps its order,
// so per-key order holds while one slow upload stalls only its own lane.
func WithLanes(n int) ProducerOption { return producerOption(func(o *options) { o.lanes = n }) }

// WithReadAhead sets how many messages of one claim (consumer group
// handler wrapper) or one partition (plain consumer wrappers) are
// rehydrated at once, ahead of the application (DefaultReadAhead); 1 reads
// one stash at a time. Order and the offsets the application may mark or
// commit are unchanged: messages still reach it one at a time, in
// partition order, and nothing after an unreadable stash.
func WithReadAhead(n int) ReadAheadOption {
	return readAheadOption(func(o *options) { o.readAhead = n })
}

// WithReadAheadBytes bounds the payload bytes (as the messages declare
// them) that one claim's or one partition's read-ahead holds at once
// (DefaultReadAheadBytes). A message larger than the bound is read alone.
func WithReadAheadBytes(n int64) ReadAheadOption {
	return readAheadOption(func(o *options) { o.readAheadBytes = n })
}

// An OffsetLister reads a consumer group's committed offsets from the
// group's coordinator. sarama.ClusterAdmin is one.
type OffsetLister interface {
	ListConsumerGroupOffsets(group string, topicPartitions map[string][]int32) (*sarama.OffsetFetchResponse, error)
}

// WithCommitCheck makes the consumer group handler wrapper confirm each
// offset commit with admin before it deletes stashes under the checker's
// claimcheck.DeleteAfterAck: after committing a mark, it reads group's
// committed offset of the partition, and deletes only the stashes of
// messages below it. sarama reports a commit that fails (during a
// rebalance, say) on the group's Errors channel and not to its caller, so
// without this check such a commit still deletes the stashes, and the
// consumer that replays the messages finds them gone. A stash whose commit
// is not confirmed waits for the next commit of its partition that the
// wrapper makes (for the next mark that releases a stash); one still
// waiting when the claim ends, or beyond the first few thousand waiting,
// is left to its TTL, and the logger says so.
//
// group must be the consumer group's ID. admin may share the group's
// client (sarama.NewClusterAdminFromClient); the check costs one request to
// the coordinator per commit that releases stashes.
func WithCommitCheck(admin OffsetLister, group string) HandlerOption {
	return handlerOption(func(o *options) { o.commits, o.group = admin, group })
}

// WithLogger sets the logger the interceptors report failures to when no
// handler is set (slog.Default()).
func WithLogger(l *slog.Logger) Option { return anyOption(func(o *options) { o.logger = l }) }

// OnProduceError sets what the ProducerInterceptor does when a message
// cannot be offloaded. The message has been left as it was; f only
// reports. By default the failure is logged at Error. The wrappers return
// these errors to the caller instead.
func OnProduceError(f func(msg *sarama.ProducerMessage, err error)) InterceptorOption {
	return interceptorOption(func(o *options) { o.onProduceError = f })
}

// WithMaxMessageBytes gives the ProducerInterceptor the producer's
// Producer.MaxMessageBytes, which an interceptor cannot see: a message over
// it is claim-checked even under the checker's threshold, as the wrappers
// do, unless the policy keeps it as it is (see the package documentation).
// Pass the config's own value:
//
//	cfg.Producer.Interceptors = []sarama.ProducerInterceptor{
//		ccsarama.NewProducerInterceptor(cc, ccsarama.WithMaxMessageBytes(cfg.Producer.MaxMessageBytes)),
//	}
//
// 0, the default, offloads by the threshold alone.
func WithMaxMessageBytes(n int) InterceptorOption {
	return interceptorOption(func(o *options) { o.maxMessageBytes = max(n, 0) })
}

func checkConfig(cfg *sarama.Config) error {
	if cfg == nil {
		return errors.New("ccsarama: nil sarama.Config")
	}
	if !cfg.Version.IsAtLeast(sarama.V0_11_0_0) {
		return fmt.Errorf("%w (have %s)", ErrVersion, cfg.Version)
	}
	return nil
}
