// Package claimchecktest is the conformance suite every transport adapter
// runs. An adapter implements Harness over its real broker (started by the
// test: an embedded nats-server, kfake, a Watermill Go channel) and calls
// RunConformanceTests; Features says what the transport is like instead of
// skipping checks.
//
// The suite checks the wire contract end to end: messages of mixed sizes
// round-trip byte for byte with their headers; small messages cross the
// broker untouched; large ones cross it as an address with the contract
// headers, under the broker's size limit; a message whose stash is missing
// never reaches the handler and is reported (nacked, or routed by
// claimcheck.OnRehydrateFailure), and so does one whose reference is
// forged, truncated or of an unknown version; nothing is claim-checked twice; with
// claimcheck.DeleteAfterAck, a backlog of messages with duplicate bodies is
// delivered whole (an ack never deletes another message's stash).
package claimchecktest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Message is a transport-neutral message: a body and string headers.
type Message struct {
	Body    []byte
	Headers map[string]string
}

// Harness drives one transport. Topics are unique per test; the harness
// creates whatever the broker needs for them (streams, topics).
type Harness interface {
	// Publish sends msgs through the producer decorated with the checker
	// the harness was built with.
	Publish(ctx context.Context, topic string, msgs ...Message) error
	// PublishRaw sends msgs through an undecorated producer, as they are
	// (for crafted claim-checked messages).
	PublishRaw(ctx context.Context, topic string, msgs ...Message) error
	// Subscribe starts the decorated consumer on topic and returns what
	// reaches the application's handler, from the start of the topic. The
	// harness acknowledges each message it hands over. Headers the
	// transport itself adds may be present; the subscription ends when ctx
	// is done.
	Subscribe(ctx context.Context, topic string) (<-chan Message, error)
	// SubscribeRaw is Subscribe through an undecorated consumer: the view
	// of what crossed the broker. It is independent of Subscribe (its own
	// consumer group or durable).
	SubscribeRaw(ctx context.Context, topic string) (<-chan Message, error)
	// Close releases everything the harness started.
	Close() error
}

// NewHarness builds a harness whose decorated producer and consumer use c.
type NewHarness func(t *testing.T, c *claimcheck.Checker) Harness

// Features describe the transport.
type Features struct {
	// MaxMessageBytes is the broker's message size limit (default 1 MiB).
	// Large test messages are over twice it, and the suite checks that what
	// crossed the broker stayed under it.
	MaxMessageBytes int
	// NewEngine builds the stash engine the checkers use (default: a fresh
	// memstash backend).
	NewEngine func(t *testing.T) *stash.Engine
	// Timeout bounds each wait for messages (default 20s).
	Timeout time.Duration
	// TextBodies makes every test body printable ASCII, for brokers whose
	// messages are text (SQS, SNS).
	TextBodies bool
	// CheckerOptions are added to every checker the suite builds, before
	// the test's own (claimcheck.WithRetryDelay for a quick redelivery, a
	// wire contract with claimcheck.WithContract, say). The wire checks
	// accept either contract.
	CheckerOptions []claimcheck.Option
}

const threshold = 64 << 10

// RunConformanceTests runs the suite.
func RunConformanceTests(t *testing.T, newHarness NewHarness, f Features) {
	if f.MaxMessageBytes == 0 {
		f.MaxMessageBytes = 1 << 20
	}
	if f.NewEngine == nil {
		f.NewEngine = func(t *testing.T) *stash.Engine {
			e, err := stash.New(stash.WithBackend(memstash.New()))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
	}
	if f.Timeout == 0 {
		f.Timeout = 20 * time.Second
	}
	s := &suite{newHarness: newHarness, f: f}
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("Wire", s.testWire)
	t.Run("MissingStash", s.testMissingStash)
	t.Run("MissingStashRouted", s.testMissingStashRouted)
	t.Run("ForgedReferences", s.testForgedReferences)
	t.Run("NeverTwice", s.testNeverTwice)
	t.Run("DuplicateBodiesDeleteAfterAck", s.testDuplicateBodies)
}

type suite struct {
	newHarness NewHarness
	f          Features
}

var topicSeq struct {
	sync.Mutex
	n int
}

func topic(t *testing.T) string {
	topicSeq.Lock()
	defer topicSeq.Unlock()
	topicSeq.n++
	name := strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(t.Name()))
	return fmt.Sprintf("cc-%s-%d-%d", name, time.Now().UnixNano()%1e6, topicSeq.n)
}

func (s *suite) setup(t *testing.T, opts ...claimcheck.Option) (Harness, *claimcheck.Checker, context.Context) {
	t.Helper()
	all := append([]claimcheck.Option{claimcheck.WithThreshold(threshold)}, s.f.CheckerOptions...)
	c, err := claimcheck.New(s.f.NewEngine(t), append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := s.newHarness(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.f.Timeout)
	t.Cleanup(func() {
		cancel()
		if err := h.Close(); err != nil {
			t.Errorf("harness Close: %v", err)
		}
	})
	return h, c, ctx
}

// mixed returns messages from empty to over twice the broker's limit, each
// with an "id" header and a producer header.
func (s *suite) mixed() []Message {
	sizes := []int{0, 1, 100, threshold - 2048, threshold + 1, 2*s.f.MaxMessageBytes + 12345, 300 << 10}
	msgs := make([]Message, len(sizes))
	for i, n := range sizes {
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(i*31 + j*7 + j>>9)
			if s.f.TextBodies {
				body[j] = 'a' + body[j]%26
			}
		}
		msgs[i] = Message{Body: body, Headers: map[string]string{"id": strconv.Itoa(i), "producer-header": "v" + strconv.Itoa(n)}}
	}
	return msgs
}

func isLarge(m Message) bool { return len(m.Body) > threshold-claimcheck.DefaultMargin-64 }

// receive reads n messages keyed by their "id" header.
func (s *suite) receive(t *testing.T, ch <-chan Message, n int) map[string]Message {
	t.Helper()
	got := map[string]Message{}
	timeout := time.After(s.f.Timeout)
	for len(got) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("subscription ended after %d of %d messages", len(got), n)
			}
			got[m.Headers["id"]] = m
		case <-timeout:
			t.Fatalf("received %d of %d messages in %s", len(got), n, s.f.Timeout)
		}
	}
	return got
}

func (s *suite) testRoundTrip(t *testing.T) {
	h, _, ctx := s.setup(t)
	tp := topic(t)
	ch, err := h.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	sent := s.mixed()
	if err := h.Publish(ctx, tp, sent...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := s.receive(t, ch, len(sent))
	for i, want := range sent {
		m := got[strconv.Itoa(i)]
		if !bytes.Equal(m.Body, want.Body) {
			t.Errorf("message %d: body of %d bytes, want %d bytes as sent", i, len(m.Body), len(want.Body))
		}
		for k, v := range want.Headers {
			if m.Headers[k] != v {
				t.Errorf("message %d: header %s = %q, want %q", i, k, m.Headers[k], v)
			}
		}
		for k := range m.Headers {
			if strings.HasPrefix(k, "claimstash-") {
				t.Errorf("message %d: contract header %s reached the handler", i, k)
			}
		}
	}
}

func (s *suite) testWire(t *testing.T) {
	h, _, ctx := s.setup(t)
	tp := topic(t)
	raw, err := h.SubscribeRaw(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	sent := s.mixed()
	if err := h.Publish(ctx, tp, sent...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := s.receive(t, raw, len(sent))
	for i, want := range sent {
		m := got[strconv.Itoa(i)]
		if len(m.Body) > s.f.MaxMessageBytes {
			t.Errorf("message %d: %d bytes crossed a broker that takes %d", i, len(m.Body), s.f.MaxMessageBytes)
		}
		for k, v := range want.Headers {
			if m.Headers[k] != v {
				t.Errorf("message %d: header %s = %q on the wire, want %q", i, k, m.Headers[k], v)
			}
		}
		if !isLarge(want) {
			if !bytes.Equal(m.Body, want.Body) {
				t.Errorf("message %d (%d bytes): body changed on the wire", i, len(want.Body))
			}
			for k := range m.Headers {
				if strings.HasPrefix(k, "claimstash-") || k == claimcheck.AttrExtendedPayloadSize {
					t.Errorf("message %d (%d bytes): header %s on an untouched message", i, len(want.Body), k)
				}
			}
			continue
		}
		if p, size, ok, err := claimcheck.ParseAWSPointer(m.Body, claimcheck.MapHeaders(m.Headers)); ok {
			if err != nil || size != int64(len(want.Body)) || p.Bucket == "" {
				t.Errorf("message %d (%d bytes): bad AWS pointer on the wire: %+v size=%d err=%v", i, len(want.Body), p, size, err)
			}
			continue
		}
		addr, size, ok, err := claimcheck.Reference(m.Body, claimcheck.MapHeaders(m.Headers))
		if !ok || err != nil || size != int64(len(want.Body)) {
			t.Errorf("message %d (%d bytes): not claim-checked on the wire: ok=%v size=%d err=%v headers=%v", i, len(want.Body), ok, size, err, m.Headers)
			continue
		}
		if _, err := stash.ParseAddress(addr); err != nil {
			t.Errorf("message %d: body %q is not an address: %v", i, addr, err)
		}
	}
}

// missing returns a crafted claim-checked message whose stash was never
// written, in a store the checker may read.
func missing(c *claimcheck.Checker, id string) Message {
	scheme := c.Engine().Schemes()[0]
	addr := scheme + "://" + c.Engine().Namespace() + "/gone." + strings.Repeat("ab", 32)
	return Message{Body: []byte(addr), Headers: map[string]string{
		"id": id, claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: "1000",
	}}
}

func (s *suite) testMissingStash(t *testing.T) {
	var counters claimcheck.Counters
	h, c, ctx := s.setup(t, claimcheck.WithObserver(&counters))
	tp := topic(t)
	ch, err := h.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PublishRaw(ctx, tp, missing(c, "gone")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(s.f.Timeout)
	for counters.Snapshot().RehydrateFailures == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the missing stash was never reported")
		}
		select {
		case m := <-ch:
			t.Fatalf("a message whose stash is missing reached the handler: %q", m.Body)
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case m := <-ch:
		t.Fatalf("a message whose stash is missing reached the handler: %q", m.Body)
	case <-time.After(300 * time.Millisecond):
	}
}

func (s *suite) testMissingStashRouted(t *testing.T) {
	var mu sync.Mutex
	var routed []claimcheck.Failure
	h, c, ctx := s.setup(t, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
		mu.Lock()
		defer mu.Unlock()
		routed = append(routed, f)
		return nil
	}))
	tp := topic(t)
	ch, err := h.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PublishRaw(ctx, tp, missing(c, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(ctx, tp, Message{Body: []byte("after"), Headers: map[string]string{"id": "after"}}); err != nil {
		t.Fatal(err)
	}
	// The routed message was acknowledged, so the stream goes on.
	got := s.receive(t, ch, 1)
	if m, ok := got["after"]; !ok || string(m.Body) != "after" {
		t.Fatalf("received %v, want the message after the routed one", got)
	}
	// Order across messages is not guaranteed everywhere: wait for the
	// routed one too.
	deadline := time.Now().Add(s.f.Timeout)
	for {
		mu.Lock()
		n := len(routed)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failure handler was not called")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	f := routed[0]
	if f.Topic != tp || string(f.Body) != string(missing(c, "").Body) || f.Err == nil || f.Message == nil {
		t.Fatalf("failure %+v", f)
	}
	if v, _ := f.Headers.Get(claimcheck.HeaderVersion); v != claimcheck.ContractVersion {
		t.Errorf("failure headers lost the contract: %v", f.Headers)
	}
}

func (s *suite) testNeverTwice(t *testing.T) {
	h, c, ctx := s.setup(t, claimcheck.WithMode(claimcheck.Always))
	tp := topic(t)
	ch, err := h.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := h.SubscribeRaw(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("claim"), 1000)
	hdrs := claimcheck.MapHeaders{"id": "0"}
	body, addr, err := c.Offload(ctx, tp, payload, hdrs)
	if err != nil || addr == "" {
		t.Fatalf("Offload: %q %v", addr, err)
	}
	// Already claim-checked: the decorated producer must send it as it is.
	if err := h.Publish(ctx, tp, Message{Body: body, Headers: maps.Clone(hdrs)}); err != nil {
		t.Fatal(err)
	}
	if m := s.receive(t, raw, 1)["0"]; string(m.Body) != string(body) {
		t.Errorf("wire body %q, want the original %q", m.Body, body)
	}
	if m := s.receive(t, ch, 1)["0"]; !bytes.Equal(m.Body, payload) {
		t.Errorf("handler got %q, want the payload", m.Body)
	}
}

// testDuplicateBodies: a backlog of 30 messages over 3 distinct bodies,
// consumed by a single consumer with DeleteAfterAck. Content addressing
// would give duplicates one stash, which the first ack deleted (issue 11,
// item 3); every message must reach the handler with its body.
func (s *suite) testDuplicateBodies(t *testing.T) {
	h, _, ctx := s.setup(t, claimcheck.DeleteAfterAck())
	tp := topic(t)
	bodies := make([][]byte, 3)
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte{byte('a' + i)}, threshold+5000)
	}
	sent := make([]Message, 30)
	for i := range sent {
		sent[i] = Message{Body: bodies[i%3], Headers: map[string]string{"id": strconv.Itoa(i)}}
	}
	// Subscribed first, for transports without a backlog of their own
	// (core NATS); the publisher still runs well ahead of the consumer,
	// which rehydrates, acks and deletes one message at a time.
	ch, err := h.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(ctx, tp, sent...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := s.receive(t, ch, len(sent))
	for i := range sent {
		if m := got[strconv.Itoa(i)]; !bytes.Equal(m.Body, bodies[i%3]) {
			t.Errorf("message %d: body of %d bytes, want body %d (%d bytes)", i, len(m.Body), i%3, len(bodies[i%3]))
		}
	}
}
