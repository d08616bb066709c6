package ccsarama_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// capConfig is config with Producer.MaxMessageBytes lowered to 64 KiB,
// under the checker's default threshold (256 KiB), and no retries.
func capConfig() *sarama.Config {
	cfg := config()
	cfg.Producer.MaxMessageBytes = smallMaxMessage
	cfg.Producer.Compression = sarama.CompressionNone
	cfg.Producer.Retry.Max = 0
	return cfg
}

// offloadCounter counts the checker's stash writes, successful or not.
func offloadCounter() (*atomic.Int64, claimcheck.Option) {
	var n atomic.Int64
	return &n, claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if ev.Op == claimcheck.OpOffload {
			n.Add(1)
		}
	}))
}

// With Producer.MaxMessageBytes at 64 KiB and the default threshold, a
// 100 KiB message (with a key and a header) through the sync producer and
// one through the async producer are claim-checked, although they are
// under the threshold, and arrive rehydrated at a ccsarama consumer, key
// and header kept; a 60 KiB message, which fits, is produced untouched.
// On a topic whose max.message.bytes is 64 KiB too.
func TestMaxMessageBytesOffloads(t *testing.T) { eachKafka(t, testMaxMessageBytesOffloads) }

func testMaxMessageBytesOffloads(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "cap", 1, map[string]string{"max.message.bytes": strconv.Itoa(smallMaxMessage)})
	offloads, observe := offloadCounter()
	c, _ := newChecker(t, observe)
	cfg := capConfig()
	sp, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	ap := asyncProducer(t, k.Addrs, cfg, c)
	bodies := [][]byte{random(t, 100<<10), random(t, 100<<10), random(t, 60<<10)}
	msg := func(i int) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(i)), Value: sarama.ByteEncoder(bodies[i]),
			Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("v" + strconv.Itoa(i))}}}
	}
	if _, _, err := sp.SendMessage(msg(0)); err != nil {
		t.Fatalf("100 KiB through the sync producer: %v", err)
	}
	ap.Input() <- msg(1)
	select {
	case <-ap.Successes():
	case pe := <-ap.Errors():
		t.Fatalf("100 KiB through the async producer: %v", pe.Err)
	case <-time.After(30 * time.Second):
		t.Fatal("no answer from the async producer")
	}
	if err := ap.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.SendMessage(msg(2)); err != nil {
		t.Fatalf("60 KiB: %v", err)
	}
	if n := offloads.Load(); n != 2 {
		t.Errorf("%d offloads, want 2", n)
	}

	for i, r := range rawRecords(t, k.Addrs, topic, 3) {
		_, marked := recordHeader(r, claimcheck.HeaderVersion)
		if i < 2 && (!marked || len(r.Value) > 1024) {
			t.Errorf("record %d on the broker: %d bytes, claim-checked %v; want a reference", i, len(r.Value), marked)
		}
		if i == 2 && (marked || !bytes.Equal(r.Value, bodies[2]) || len(r.Headers) != 1) {
			t.Errorf("the message that fits was changed: %d bytes, headers %v", len(r.Value), r.Headers)
		}
	}
	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-cap-"+k.Name, []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	for i, m := range receive(t, col.got, 3, 30*time.Second) {
		sameBytes(t, "message "+strconv.Itoa(i), m.Value, bodies[i])
		if string(m.Key) != "k"+strconv.Itoa(i) {
			t.Errorf("message %d: key %q", i, m.Key)
		}
		if v, _ := header(m, "h"); v != "v"+strconv.Itoa(i) || len(m.Headers) != 1 {
			t.Errorf("message %d: %d headers, h = %q", i, len(m.Headers), v)
		}
	}
}

// refusedBySarama reports whether err is sarama's own refusal of a message
// over Producer.MaxMessageBytes (a ConfigurationError: sarama v1.61 says
// so before sending, rather than with ErrMessageSizeTooLarge, which is the
// broker's answer).
func refusedBySarama(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) && strings.Contains(ce.Error(), "MaxMessageBytes")
}

// refusedByBoth sends one message made by newMsg through a wrapped sync
// producer and another through a wrapped async producer, both over cfg and
// c, and checks that each is refused: check gets the error, and the message
// as the caller holds it (the sync one) or as the async producer reports
// it on Errors, which must be the message sent.
func refusedByBoth(t *testing.T, k *kafkatest.Cluster, cfg *sarama.Config, c *claimcheck.Checker, newMsg func() *sarama.ProducerMessage, check func(t *testing.T, err error, m *sarama.ProducerMessage)) {
	t.Helper()
	sp, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	m := newMsg()
	_, _, err = sp.SendMessage(m)
	check(t, err, m)

	ap := asyncProducer(t, k.Addrs, cfg, c)
	sent := newMsg()
	ap.Input() <- sent
	select {
	case pe := <-ap.Errors():
		if pe.Msg != sent {
			t.Fatal("async: Errors gave another message than the one sent")
		}
		check(t, pe.Err, pe.Msg)
	case <-ap.Successes():
		t.Fatal("async: produced")
	case <-time.After(30 * time.Second):
		t.Fatal("async: no answer")
	}
	if err := ap.Close(); err != nil {
		t.Fatal(err)
	}
}

// What the policy keeps in the message goes out unchanged, and sarama
// refuses it as before: a checker in mode Never, the producer's
// claimstash-offload: never, a message already marked claim-checked.
// Nothing is stored and nothing is on the topic. The async producer
// reports the message as it was sent.
func TestMaxMessageBytesPolicyKeeps(t *testing.T) {
	k := startKafka(t, 1)
	k.CreateTopic(t, "keep", 1, nil)
	cfg := capConfig()
	body := random(t, 100<<10)
	// A marked message keeps a body a consumer can read as a reference
	// (at most 64 KiB, no white space): one that is not is refused by the
	// checker before the cap is looked at (claimcheck.ErrMalformed).
	longestReference := bytes.Repeat([]byte("a"), 64<<10)
	cases := []struct {
		name    string
		opts    []claimcheck.Option
		headers []sarama.RecordHeader
		body    []byte // nil: 100 KiB of random bytes
	}{
		{"mode never", []claimcheck.Option{claimcheck.WithMode(claimcheck.Never)}, nil, nil},
		{"override never", nil, []sarama.RecordHeader{{Key: []byte(claimcheck.HeaderOffload), Value: []byte(claimcheck.OffloadNever)}}, nil},
		{"marked", nil, []sarama.RecordHeader{
			{Key: []byte(claimcheck.HeaderVersion), Value: []byte(claimcheck.ContractVersion)},
			{Key: []byte(claimcheck.HeaderSize), Value: []byte("5")}}, longestReference},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := body
			if tc.body != nil {
				body = tc.body
			}
			offloads, observe := offloadCounter()
			c, _ := newChecker(t, append(tc.opts, observe)...)
			newMsg := func() *sarama.ProducerMessage {
				return &sarama.ProducerMessage{Topic: "keep", Value: sarama.ByteEncoder(body), Headers: slices.Clone(tc.headers)}
			}
			refusedByBoth(t, k, cfg, c, newMsg, func(t *testing.T, err error, m *sarama.ProducerMessage) {
				t.Helper()
				if !refusedBySarama(err) {
					t.Errorf("err = %v, want sarama's refusal over Producer.MaxMessageBytes", err)
				}
				if v, _ := m.Value.Encode(); !bytes.Equal(v, body) {
					t.Errorf("the value is %d bytes, not the body", len(v))
				}
			})
			if n := offloads.Load(); n != 0 {
				t.Errorf("%d stash writes, want none", n)
			}
		})
	}
	nothingOn(t, k.Addrs, "keep")
}

// A message over the cap whose reference could not fit it either (a
// 64 KiB header, which the reference keeps) is refused before its stash
// is written, with an error that matches sarama.ErrMessageSizeTooLarge,
// a *claimcheck.Error; the message is left as it was (no override added)
// and nothing is sent. The async producer reports it on Errors, as sent.
func TestMaxMessageBytesReferenceTooLarge(t *testing.T) {
	k := startKafka(t, 1)
	k.CreateTopic(t, "ref", 1, nil)
	offloads, observe := offloadCounter()
	c, _ := newChecker(t, observe)
	cfg := capConfig()
	body, big := random(t, 100<<10), bytes.Repeat([]byte("x"), smallMaxMessage)
	newMsg := func() *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: "ref", Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body),
			Headers: []sarama.RecordHeader{{Key: []byte("big"), Value: big}}, Metadata: "sent"}
	}
	unchanged := func(t *testing.T, m *sarama.ProducerMessage) {
		t.Helper()
		if v, _ := m.Value.Encode(); !bytes.Equal(v, body) {
			t.Errorf("the value is %d bytes, not the body", len(v))
		}
		if len(m.Headers) != 1 || string(m.Headers[0].Key) != "big" {
			t.Errorf("the headers changed: %d headers", len(m.Headers))
		}
	}
	refusedByBoth(t, k, cfg, c, newMsg, func(t *testing.T, err error, m *sarama.ProducerMessage) {
		t.Helper()
		var ce *claimcheck.Error
		if !errors.Is(err, sarama.ErrMessageSizeTooLarge) || !errors.As(err, &ce) {
			t.Fatalf("err = %v, want a *claimcheck.Error matching ErrMessageSizeTooLarge", err)
		}
		if !strings.HasPrefix(err.Error(), "claimcheck: offload on ref: ccsarama: ") {
			t.Errorf("message %q", err)
		}
		unchanged(t, m)
	})
	if n := offloads.Load(); n != 0 {
		t.Errorf("%d stash writes, want none", n)
	}
	nothingOn(t, k.Addrs, "ref")
}

// A stash failure while claim-checking a message for the cap leaves the
// message as it was: the override the producer added to its headers is
// gone, and nothing is sent.
func TestMaxMessageBytesStashFailureLeavesMessage(t *testing.T) {
	k := startKafka(t, 1)
	k.CreateTopic(t, "fail", 1, nil)
	c, st := newChecker(t)
	st.failing.Store(true)
	cfg := capConfig()
	sp, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	headers := []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("v")}}
	m := &sarama.ProducerMessage{Topic: "fail", Value: sarama.ByteEncoder(random(t, 100<<10)), Headers: headers}
	if _, _, err := sp.SendMessage(m); !errors.Is(err, errBackendDown) {
		t.Fatalf("err = %v, want the store's", err)
	}
	if len(m.Headers) != 1 || &m.Headers[0] != &headers[0] {
		t.Errorf("headers after the failure: %v", m.Headers)
	}
	nothingOn(t, k.Addrs, "fail")
}

// ReferenceFloor is never more than what a reference takes as sarama
// counts it, and no less than it with the shortest address: after an
// offload, the two differ by the address's length over the shortest.
func TestReferenceFloor(t *testing.T) {
	ctx := context.Background()
	c, _ := newChecker(t, claimcheck.WithMode(claimcheck.Always))
	for _, m := range []*sarama.ProducerMessage{
		{Topic: "t", Value: sarama.ByteEncoder(random(t, 10))},
		{Topic: "a-topic", Key: sarama.StringEncoder("key"), Value: sarama.ByteEncoder(random(t, 123456)),
			Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("v")}, {Key: []byte(claimcheck.HeaderOffload), Value: []byte(claimcheck.OffloadAlways)}}},
	} {
		size := m.Value.Length()
		floor := ccsarama.ReferenceFloor(c, m, size)
		p, err := ccsarama.WrapSyncProducer(config(), &discardProducer{}, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.SendMessageContext(ctx, m); err != nil {
			t.Fatal(err)
		}
		address, _ := m.Value.Encode()
		if got, want := m.ByteSize(2)-floor, len(address)-(len("a://b/c.")+64); got != want {
			t.Errorf("%d-byte value: the reference is %d bytes over the floor %d, want %d (address %s)", size, got, floor, want, address)
		}
	}
}

// Below the threshold, the cap adds no allocation: the sync producer
// wrapper allocates as much for a message under a lowered
// Producer.MaxMessageBytes (whose size is counted) as under the default
// one (where it is not).
func TestMaxMessageBytesNoAllocs(t *testing.T) {
	c, _ := newChecker(t)
	m := &sarama.ProducerMessage{Topic: "small", Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(random(t, 1<<10)),
		Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}}}
	allocs := func(maxMessageBytes int) float64 {
		cfg := config()
		cfg.Producer.MaxMessageBytes = maxMessageBytes
		p, err := ccsarama.WrapSyncProducer(cfg, &discardProducer{}, c)
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(200, func() {
			if _, _, err := p.SendMessage(m); err != nil {
				t.Fatal(err)
			}
		})
	}
	if low, def := allocs(smallMaxMessage), allocs(sarama.NewConfig().Producer.MaxMessageBytes); low != def {
		t.Errorf("%v allocations per message under a 64 KiB cap, %v under the default", low, def)
	}
}

// SendMessages under the cap: a message the cap claim-checks and one that
// fits are produced; one whose reference could not fit, under the
// threshold or over it, comes back as a *sarama.ProducerError matching
// ErrMessageSizeTooLarge, holding the message as it was, and has nothing
// stored.
func TestMaxMessageBytesSendMessages(t *testing.T) {
	k := startKafka(t, 1)
	k.CreateTopic(t, "batch", 1, nil)
	offloads, observe := offloadCounter()
	c, _ := newChecker(t, observe)
	cfg := capConfig()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	big := []sarama.RecordHeader{{Key: []byte("big"), Value: bytes.Repeat([]byte("x"), smallMaxMessage)}}
	msgs := []*sarama.ProducerMessage{
		{Topic: "batch", Value: sarama.ByteEncoder(random(t, 100<<10))},
		{Topic: "batch", Value: sarama.ByteEncoder(random(t, 100<<10)), Headers: big},
		{Topic: "batch", Value: sarama.ByteEncoder(random(t, 300<<10)), Headers: big},
		{Topic: "batch", Value: sarama.ByteEncoder(random(t, 1<<10))},
	}
	err = p.SendMessages(msgs)
	var pes sarama.ProducerErrors
	if !errors.As(err, &pes) || len(pes) != 2 {
		t.Fatalf("err = %v, want two producer errors", err)
	}
	for i, pe := range pes {
		if pe.Msg != msgs[i+1] || !errors.Is(pe.Err, sarama.ErrMessageSizeTooLarge) {
			t.Errorf("error %d: %v, for message %p", i, pe.Err, pe.Msg)
		}
		if len(pe.Msg.Headers) != 1 {
			t.Errorf("error %d: the message has %d headers, not the one it was sent with", i, len(pe.Msg.Headers))
		}
	}
	if n := offloads.Load(); n != 1 {
		t.Errorf("%d stash writes, want 1", n)
	}
	if hw := highWater(t, k.Addrs, "batch", 0); hw != 2 {
		t.Fatalf("%d records on the topic, want 2", hw)
	}
}

// The drop-in interceptor, given the cap with WithMaxMessageBytes, claim-
// checks a 100 KiB message under the threshold as the wrappers do, and it
// arrives rehydrated; a 60 KiB one is produced untouched. Without the
// option the interceptor offloads by the threshold alone, and sarama
// refuses the 100 KiB message as before.
func TestMaxMessageBytesInterceptor(t *testing.T) { eachKafka(t, testMaxMessageBytesInterceptor) }

func testMaxMessageBytesInterceptor(t *testing.T, k *kafkatest.Broker) {
	topic := k.NewTopic(t, "capi", 1, map[string]string{"max.message.bytes": strconv.Itoa(smallMaxMessage)})
	offloads, observe := offloadCounter()
	c, _ := newChecker(t, observe)

	plain := capConfig()
	plain.Producer.Interceptors = []sarama.ProducerInterceptor{ccsarama.NewProducerInterceptor(c)}
	if _, _, err := syncProducer(t, k.Addrs, plain).SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(t, 100<<10))}); !refusedBySarama(err) {
		t.Fatalf("100 KiB without the option: %v, want sarama's refusal", err)
	}
	if n := offloads.Load(); n != 0 {
		t.Fatalf("%d offloads without the option, want 0", n)
	}

	cfg := capConfig()
	cfg.Producer.Interceptors = []sarama.ProducerInterceptor{ccsarama.NewProducerInterceptor(c, ccsarama.WithMaxMessageBytes(cfg.Producer.MaxMessageBytes))}
	p := syncProducer(t, k.Addrs, cfg)
	bodies := [][]byte{random(t, 100<<10), random(t, 60<<10)}
	for i, b := range bodies {
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(i)), Value: sarama.ByteEncoder(b),
			Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("v")}}}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatalf("message %d (%d bytes) through the interceptor: %v", i, len(b), err)
		}
	}
	if n := offloads.Load(); n != 1 {
		t.Errorf("%d offloads, want 1", n)
	}
	recs := rawRecords(t, k.Addrs, topic, 2)
	if _, marked := recordHeader(recs[0], claimcheck.HeaderVersion); !marked || len(recs[0].Value) > 1024 {
		t.Errorf("the 100 KiB record on the broker: %d bytes, claim-checked %v; want a reference", len(recs[0].Value), marked)
	}
	if _, marked := recordHeader(recs[1], claimcheck.HeaderVersion); marked || !bytes.Equal(recs[1].Value, bodies[1]) {
		t.Errorf("the message that fits was changed: %d bytes, claim-checked %v", len(recs[1].Value), marked)
	}
	col := newCollector("a")
	runGroup(t, k.Addrs, cfg, "g-capi-"+k.Name, []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
	for i, m := range receive(t, col.got, 2, 30*time.Second) {
		sameBytes(t, "message "+strconv.Itoa(i), m.Value, bodies[i])
		if v, _ := header(m, "h"); v != "v" || len(m.Headers) != 1 {
			t.Errorf("message %d: %d headers, h = %q", i, len(m.Headers), v)
		}
	}
}
