package ccsarama

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

// asyncProducer offloads on its own lanes, then hands messages to the
// sarama producer's Input in lane order.
//
// Goroutines: dispatch (reads input, spreads over lanes; when input is
// closed it closes the lanes, waits for them and closes the sarama producer), one
// per lane (exits when its channel is closed), errs (forwards the sarama
// producer's Errors, exits when sarama closes them, then closes ours) and,
// with cfg.Producer.Return.Successes, successes (the same for Successes).
type asyncProducer struct {
	sarama.AsyncProducer // forwards the transaction methods
	c                    *claimcheck.Checker
	o                    *options
	returnErrors         bool
	returnSuccesses      bool
	limit                int // cfg.Producer.MaxMessageBytes

	input  chan *sarama.ProducerMessage
	errors chan *sarama.ProducerError
	// successes is nil without cfg.Producer.Return.Successes.
	successes chan *sarama.ProducerMessage
	lanes     []chan *sarama.ProducerMessage
	seed      maphash.Seed

	closeOnce sync.Once
}

// barrier is a marker a caller sends through input to learn when every
// message sent before it has reached sarama.
type barrier struct{ wg sync.WaitGroup }

// WrapAsyncProducer returns p claim-checking every message sent on its
// Input, as WrapSyncProducer does (over the checker's threshold, or over
// cfg.Producer.MaxMessageBytes). Offloads run off sarama's dispatcher
// goroutine, on lanes (see WithLanes) chosen by topic and key, so per-key
// order holds and one slow upload stalls only its lane. A message whose offload fails is not
// produced: it comes back on Errors as a *sarama.ProducerError holding the
// original message, unchanged (or is logged when
// cfg.Producer.Return.Errors is false, as sarama does). A claim-checked
// message that sarama or the broker refuses (its reference too large for
// the topic, say) comes back on Errors as it was sent too: its value and
// headers are put back, and its stash is left to its TTL. A message on
// Successes has the reference as its value, as it was produced, and its
// own Metadata. cfg is the config p was built with; its Version must be
// V0_11_0_0 or newer (ErrVersion).
//
// Close and AsyncClose drain: messages already accepted are offloaded and
// handed to sarama before sarama is closed. CommitTxn and AbortTxn first
// wait for every message sent before them to reach sarama, so each message
// is in the transaction it was sent in.
//
// Options: WithTimeout, WithLanes, WithLogger.
func WrapAsyncProducer(cfg *sarama.Config, p sarama.AsyncProducer, c *claimcheck.Checker, opts ...ProducerOption) (sarama.AsyncProducer, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if p == nil || c == nil {
		return nil, errors.New("ccsarama: nil producer or checker")
	}
	o := producerOptions(opts)
	a := &asyncProducer{
		AsyncProducer:   p,
		c:               c,
		o:               o,
		returnErrors:    cfg.Producer.Return.Errors,
		returnSuccesses: cfg.Producer.Return.Successes,
		limit:           cfg.Producer.MaxMessageBytes,
		input:           make(chan *sarama.ProducerMessage, cfg.ChannelBufferSize),
		errors:          make(chan *sarama.ProducerError, cfg.ChannelBufferSize),
		lanes:           make([]chan *sarama.ProducerMessage, o.lanes),
		seed:            maphash.MakeSeed(),
	}
	for i := range a.lanes {
		a.lanes[i] = make(chan *sarama.ProducerMessage, 1)
	}
	if a.returnSuccesses {
		a.successes = make(chan *sarama.ProducerMessage, cfg.ChannelBufferSize)
		go a.forwardSuccesses()
	}
	var lanes sync.WaitGroup
	for _, l := range a.lanes {
		lanes.Go(func() { a.lane(l) })
	}
	go a.dispatch(&lanes)
	go a.forwardErrors()
	return a, nil
}

func (a *asyncProducer) Input() chan<- *sarama.ProducerMessage { return a.input }
func (a *asyncProducer) Errors() <-chan *sarama.ProducerError  { return a.errors }

// Successes is sarama's Successes, forwarded to put back the Metadata of
// claim-checked messages. Without cfg.Producer.Return.Successes it is
// sarama's own, on which nothing comes.
func (a *asyncProducer) Successes() <-chan *sarama.ProducerMessage {
	if a.successes == nil {
		return a.AsyncProducer.Successes()
	}
	return a.successes
}

// asSent is the Metadata of a claim-checked message while sarama has it:
// what the caller sent, to put back on Errors and Successes.
type asSent struct {
	metadata any
	value    sarama.Encoder
	headers  []sarama.RecordHeader
}

// laneOf keeps every message of one topic and key (or, without a key, of
// one topic and partition) on one lane.
func (a *asyncProducer) laneOf(m *sarama.ProducerMessage) int {
	var h maphash.Hash
	h.SetSeed(a.seed)
	h.WriteString(m.Topic)
	h.WriteByte(0)
	if m.Key != nil {
		if k, err := m.Key.Encode(); err == nil {
			h.Write(k)
		}
	} else {
		h.WriteByte(byte(m.Partition))
		h.WriteByte(byte(m.Partition >> 8))
	}
	return int(h.Sum64() % uint64(len(a.lanes)))
}

func (a *asyncProducer) dispatch(lanes *sync.WaitGroup) {
	for m := range a.input {
		if _, ok := m.Metadata.(*barrier); ok {
			// Every lane passes the barrier once it has handed sarama
			// everything before it.
			for _, l := range a.lanes {
				l <- m
			}
			continue
		}
		a.lanes[a.laneOf(m)] <- m
	}
	for _, l := range a.lanes {
		close(l)
	}
	lanes.Wait()
	a.AsyncProducer.AsyncClose()
}

func (a *asyncProducer) lane(in <-chan *sarama.ProducerMessage) {
	for m := range in {
		if b, ok := m.Metadata.(*barrier); ok {
			b.wg.Done()
			continue
		}
		ctx, cancel := a.o.withTimeout(context.Background())
		sent := asSent{metadata: m.Metadata, value: m.Value, headers: m.Headers}
		claimChecked, err := offloaded(ctx, a.c, a.limit, m)
		cancel()
		if err != nil {
			a.fail(m, err)
			continue
		}
		if claimChecked {
			m.Metadata = &sent
		}
		a.AsyncProducer.Input() <- m
	}
}

func (a *asyncProducer) fail(m *sarama.ProducerMessage, err error) {
	pe := &sarama.ProducerError{Msg: m, Err: err}
	if !a.returnErrors {
		a.o.logger.Error("ccsarama: message not produced", "topic", m.Topic, "err", err)
		return
	}
	a.errors <- pe
}

func (a *asyncProducer) forwardErrors() {
	defer close(a.errors)
	for pe := range a.AsyncProducer.Errors() {
		if s, ok := pe.Msg.Metadata.(*asSent); ok {
			pe.Msg.Metadata, pe.Msg.Value, pe.Msg.Headers = s.metadata, s.value, s.headers
		}
		a.errors <- pe
	}
}

func (a *asyncProducer) forwardSuccesses() {
	defer close(a.successes)
	for m := range a.AsyncProducer.Successes() {
		if s, ok := m.Metadata.(*asSent); ok {
			m.Metadata = s.metadata
		}
		a.successes <- m
	}
}

// flush returns once every message sent on Input before it was called has
// been offloaded and handed to sarama (or failed).
func (a *asyncProducer) flush() {
	b := &barrier{}
	b.wg.Add(len(a.lanes))
	a.input <- &sarama.ProducerMessage{Metadata: b}
	b.wg.Wait()
}

func (a *asyncProducer) CommitTxn() error {
	a.flush()
	return a.AsyncProducer.CommitTxn()
}

// AbortTxn first waits, as CommitTxn does, for every message sent before it
// to reach sarama (or fail), so that they are aborted with the
// transaction, as with sarama: one still being offloaded would otherwise
// reach sarama after the abort, in the next transaction, and be committed
// with it.
func (a *asyncProducer) AbortTxn() error {
	a.flush()
	return a.AsyncProducer.AbortTxn()
}

func (a *asyncProducer) AsyncClose() {
	a.closeOnce.Do(func() { close(a.input) })
}

// Close drains and closes the producer, like sarama's Close: it returns the
// errors of messages not produced as sarama.ProducerErrors.
func (a *asyncProducer) Close() error {
	a.AsyncClose()
	if a.returnSuccesses {
		go func() {
			for range a.successes {
			}
		}()
	}
	var pErrs sarama.ProducerErrors
	for pe := range a.errors {
		pErrs = append(pErrs, pe)
	}
	if len(pErrs) > 0 {
		return pErrs
	}
	return nil
}
