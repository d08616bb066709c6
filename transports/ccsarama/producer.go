package ccsarama

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

// offload claim-checks msg in place when the checker's policy says so, or
// when it is over limit, the producer's Producer.MaxMessageBytes (overCap;
// 0: no limit). On error msg is left as it was.
func offload(ctx context.Context, c *claimcheck.Checker, limit int, msg *sarama.ProducerMessage) error {
	_, err := offloaded(ctx, c, limit, msg)
	return err
}

// offloaded is offload that also reports whether msg was claim-checked.
//
// A message over limit that the checker would send as it is is
// claim-checked all the same (overCap), through the claimstash-offload
// override set on its headers (a new slice: the one it had is put back on
// error). A message whose reference could not fit limit is refused before
// anything is stored (checkReference).
func offloaded(ctx context.Context, c *claimcheck.Checker, limit int, msg *sarama.ProducerMessage) (bool, error) {
	if msg.Value == nil {
		return false, nil // a tombstone stays a tombstone
	}
	body, err := msg.Value.Encode()
	if err != nil {
		return false, &claimcheck.Error{Op: claimcheck.OpOffload, Topic: msg.Topic, Err: fmt.Errorf("ccsarama: encoding value: %w", err)}
	}
	var h claimcheck.Headers = recordHeaders{ProducerHeaders(msg), msg}
	forced := overCap(c, limit, msg, body)
	if !forced && c.Pass(ctx, msg.Topic, body, h) {
		return false, nil
	}
	sent := msg.Headers
	if forced {
		ProducerHeaders(msg).Set(claimcheck.HeaderOffload, claimcheck.OffloadAlways)
	}
	if err := checkReference(c, limit, msg, body, h); err != nil {
		msg.Headers = sent
		return false, err
	}
	out, address, err := c.Offload(ctx, msg.Topic, body, h)
	if err != nil {
		msg.Headers = sent
		return false, err
	}
	if address != "" {
		msg.Value = sarama.ByteEncoder(out)
	}
	return address != "", nil
}

// SyncProducer is a sarama.SyncProducer that claim-checks what it sends,
// with context-taking variants of its send methods.
type SyncProducer interface {
	sarama.SyncProducer
	// SendMessageContext is SendMessage with ctx bounding the stash write.
	SendMessageContext(ctx context.Context, msg *sarama.ProducerMessage) (partition int32, offset int64, err error)
	// SendMessagesContext is SendMessages with ctx bounding the stash writes.
	SendMessagesContext(ctx context.Context, msgs []*sarama.ProducerMessage) error
}

type syncProducer struct {
	sarama.SyncProducer // forwards Close and the transaction methods
	c                   *claimcheck.Checker
	o                   *options
	limit               int // cfg.Producer.MaxMessageBytes
}

var _ SyncProducer = (*syncProducer)(nil)

// WrapSyncProducer returns p claim-checking every message it sends: a
// message over the checker's threshold, or over cfg.Producer.MaxMessageBytes
// (see the package documentation), is stored first and its value
// replaced by the stash address, with the contract headers added; keys,
// headers, partitions and timestamps are kept. A stash failure is returned
// to the caller and nothing is produced. cfg is the config p was built with;
// its Version must be V0_11_0_0 or newer (ErrVersion).
//
// Options: WithTimeout, WithLanes (the concurrency of SendMessages'
// uploads).
func WrapSyncProducer(cfg *sarama.Config, p sarama.SyncProducer, c *claimcheck.Checker, opts ...ProducerOption) (SyncProducer, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if p == nil || c == nil {
		return nil, errors.New("ccsarama: nil producer or checker")
	}
	return &syncProducer{SyncProducer: p, c: c, o: producerOptions(opts), limit: cfg.Producer.MaxMessageBytes}, nil
}

func (p *syncProducer) SendMessage(msg *sarama.ProducerMessage) (int32, int64, error) {
	return p.SendMessageContext(context.Background(), msg)
}

func (p *syncProducer) SendMessageContext(ctx context.Context, msg *sarama.ProducerMessage) (int32, int64, error) {
	ctx, cancel := p.o.withTimeout(ctx)
	err := offload(ctx, p.c, p.limit, msg)
	cancel()
	if err != nil {
		return -1, -1, err
	}
	return p.SyncProducer.SendMessage(msg)
}

func (p *syncProducer) SendMessages(msgs []*sarama.ProducerMessage) error {
	return p.SendMessagesContext(context.Background(), msgs)
}

// SendMessagesContext offloads the messages (up to the lanes count at
// once), then sends those that were offloaded or needed no offload in one
// sarama.SendMessages call. Failures come back as sarama.ProducerErrors, one
// per failed message, as sarama reports them; a message whose offload failed
// is not sent, the others are.
func (p *syncProducer) SendMessagesContext(ctx context.Context, msgs []*sarama.ProducerMessage) error {
	ctx, cancel := p.o.withTimeout(ctx)
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.o.lanes)
	for i, m := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = offload(ctx, p.c, p.limit, m)
		})
	}
	wg.Wait()
	cancel()

	var pErrs sarama.ProducerErrors
	ok := make([]*sarama.ProducerMessage, 0, len(msgs))
	for i, m := range msgs {
		if errs[i] != nil {
			pErrs = append(pErrs, &sarama.ProducerError{Msg: m, Err: errs[i]})
			continue
		}
		ok = append(ok, m)
	}
	if len(ok) > 0 {
		if err := p.SyncProducer.SendMessages(ok); err != nil {
			var se sarama.ProducerErrors
			if !errors.As(err, &se) {
				if len(pErrs) == 0 {
					return err
				}
				return errors.Join(pErrs, err)
			}
			pErrs = append(pErrs, se...)
		}
	}
	if len(pErrs) > 0 {
		return pErrs
	}
	return nil
}

// recordBatchOverhead is the header of a record batch (magic 2), which the
// broker counts toward max.message.bytes with the records in it.
const recordBatchOverhead = 61

// recordHeaders are a producer message's headers as the checker sizes
// them: everything the record takes besides its value. That is what sarama
// counts against Producer.MaxMessageBytes before it sends (ProducerMessage
// ByteSize: the key, the headers with room for their length varints, the
// record's own framing at its largest) plus the header of the batch that
// carries it, which the broker counts toward max.message.bytes. So a
// message whose counted size is at a threshold no larger than either
// limit is neither refused by sarama nor by the broker.
type recordHeaders struct {
	Headers
	msg *sarama.ProducerMessage
}

func (h recordHeaders) WireSize() int {
	n := h.msg.ByteSize(2) + recordBatchOverhead
	if h.msg.Value != nil {
		n -= h.msg.Value.Length()
	}
	return n
}
