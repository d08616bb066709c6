package ccwatermill_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

func newChecker(t testing.TB, opts ...claimcheck.Option) (*claimcheck.Checker, *stash.Engine) {
	t.Helper()
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, e
}

// chanSub is a subscriber whose messages the test hands in one by one, to
// watch what the decorator does with their acks.
type chanSub struct {
	ch     chan *message.Message
	handed chan *message.Message // each message once the subscription's reader has taken it
	closed chan struct{}
	once   sync.Once
}

func newChanSub() *chanSub {
	return &chanSub{ch: make(chan *message.Message), handed: make(chan *message.Message, 100), closed: make(chan struct{})}
}

func (s *chanSub) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-s.ch:
				select {
				case out <- m:
					select {
					case s.handed <- m:
					default:
					}
				case <-s.closed:
					return
				}
			case <-s.closed:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (s *chanSub) Close() error { s.once.Do(func() { close(s.closed) }); return nil }

func waitAck(t *testing.T, m *message.Message) string {
	t.Helper()
	select {
	case <-m.Acked():
		return "ack"
	case <-m.Nacked():
		return "nack"
	case <-time.After(5 * time.Second):
		return "none"
	}
}

func claimChecked(t *testing.T, c *claimcheck.Checker, payload []byte) *message.Message {
	t.Helper()
	m := message.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set("keep", "me")
	m.Metadata.Set(claimcheck.HeaderOffload, claimcheck.OffloadAlways)
	if err := ccwatermill.Offload(c, "t", m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSubscriberAckReachesUpstream(t *testing.T) {
	c, _ := newChecker(t)
	up := newChanSub()
	sub := ccwatermill.NewSubscriber(up, c)
	ch, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, verdict := range []string{"ack", "nack"} {
		m := claimChecked(t, c, []byte("payload"))
		up.ch <- m
		got := <-ch
		if got != m {
			t.Fatal("the decorator delivered a copy: acks would not reach the subscriber")
		}
		if string(got.Payload) != "payload" || got.Metadata.Get("keep") != "me" || claimcheck.IsClaimChecked(claimcheck.MapHeaders(got.Metadata)) {
			t.Fatalf("not rehydrated: %q %v", got.Payload, got.Metadata)
		}
		if verdict == "ack" {
			got.Ack()
		} else {
			got.Nack()
		}
		if v := waitAck(t, m); v != verdict {
			t.Fatalf("upstream saw %s, want %s", v, verdict)
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
}

func TestSubscriberRehydrateFailureNacks(t *testing.T) {
	var counters claimcheck.Counters
	c, e := newChecker(t, claimcheck.WithObserver(&counters))
	up := newChanSub()
	sub := ccwatermill.NewSubscriber(up, c)
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	bad := claimChecked(t, c, []byte("gone soon"))
	if err := e.Delete(context.Background(), string(bad.Payload)); err != nil {
		t.Fatal(err)
	}
	up.ch <- bad
	if v := waitAck(t, bad); v != "nack" {
		t.Fatalf("upstream saw %s, want nack", v)
	}
	good := message.NewMessage("2", []byte("fine"))
	up.ch <- good
	if got := <-ch; got != good {
		t.Fatalf("handler got %q, want only the good message", got.Payload)
	}
	good.Ack()
	if s := counters.Snapshot(); s.RehydrateFailures != 1 {
		t.Fatalf("counters %+v", s)
	}
}

func TestSubscriberCloseWithUnreadMessage(t *testing.T) {
	c, _ := newChecker(t)
	up := newChanSub()
	sub := ccwatermill.NewSubscriber(up, c)
	if _, err := sub.Subscribe(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	m := message.NewMessage("1", []byte("never read"))
	up.ch <- m
	<-up.handed // the forwarder holds it; nobody reads
	done := make(chan error)
	go func() { done <- sub.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with an undelivered message")
	}
	if v := waitAck(t, m); v != "nack" {
		t.Fatalf("undelivered message got %s, want nack so it is redelivered", v)
	}
	if _, err := sub.Subscribe(context.Background(), "t"); err == nil {
		t.Fatal("Subscribe after Close succeeded")
	}
}

func TestSubscriberContextCancel(t *testing.T) {
	c, _ := newChecker(t)
	up := newChanSub()
	sub := ccwatermill.NewSubscriber(up, c)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("message after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after the context was cancelled")
	}
}

func TestPublishError(t *testing.T) {
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithMaxSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, claimcheck.WithThreshold(100))
	if err != nil {
		t.Fatal(err)
	}
	gc := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer gc.Close()
	pub := ccwatermill.NewPublisher(gc, c)
	m := message.NewMessage("1", make([]byte, 2000))
	err = pub.Publish("t", m)
	if !errors.Is(err, stash.ErrTooLarge) {
		t.Fatalf("err = %v, want the stash's ErrTooLarge", err)
	}
	if len(m.Payload) != 2000 || len(m.Metadata) != 0 {
		t.Fatal("a failed publish changed the message")
	}
	// Nothing went out.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ch, _ := gc.Subscribe(ctx, "t")
	if got, ok := <-ch; ok {
		t.Fatalf("a message was published despite the failed stash write: %q", got.Payload)
	}
	// A message built without Metadata still gets the contract.
	m = &message.Message{UUID: "2", Payload: make([]byte, 500)}
	if err := ccwatermill.Offload(c, "t", m); err != nil || !claimcheck.IsClaimChecked(claimcheck.MapHeaders(m.Metadata)) {
		t.Fatalf("nil metadata: %v %v", err, m.Metadata)
	}
}

// TestRouter wires the decorators the way a Watermill user does, and the
// handler middleware on a router that reads from an undecorated subscriber;
// stashes are deleted after ack when asked.
func TestRouter(t *testing.T) {
	var counters claimcheck.Counters
	var mu sync.Mutex
	var deleted []string
	c, e := newChecker(t, claimcheck.WithThreshold(64<<10), claimcheck.DeleteAfterAck(), claimcheck.WithObserver(claimcheck.Observers(&counters, claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if ev.Op == claimcheck.OpDelete {
			mu.Lock()
			deleted = append(deleted, ev.Address)
			mu.Unlock()
		}
	}))))
	gc := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddPublisherDecorators(ccwatermill.PublisherDecorator(c))
	router.AddSubscriberDecorators(ccwatermill.SubscriberDecorator(c))

	big := bytes.Repeat([]byte("big!"), 256<<10) // 1 MiB
	var got sync.Map
	var n atomic.Int32
	all := make(chan struct{})
	// in -> relay (decorated subscriber, republishes through the decorated
	// publisher) -> out -> sink (plain router + middleware).
	router.AddHandler("relay", "in", gc, "out", gc, func(msg *message.Message) ([]*message.Message, error) {
		if !bytes.Equal(msg.Payload, big) && string(msg.Payload) != "small" {
			return nil, errors.New("relay got a wrong payload")
		}
		out := message.NewMessage(watermill.NewUUID(), msg.Payload)
		out.Metadata.Set("via", "relay")
		return []*message.Message{out}, nil
	})
	plain, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	plain.AddMiddleware(ccwatermill.Middleware(c))
	plain.AddConsumerHandler("sink", "out", gc, func(msg *message.Message) error {
		got.Store(msg.UUID, msg)
		if n.Add(1) == 2 {
			close(all)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, r := range []*message.Router{router, plain} {
		go func() { _ = r.Run(ctx) }()
		<-r.Running()
	}

	pub := ccwatermill.NewPublisher(gc, c)
	if err := pub.Publish("in", message.NewMessage("1", big), message.NewMessage("2", []byte("small"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("the sink did not get both messages")
	}
	var sizes []int
	got.Range(func(_, v any) bool {
		m := v.(*message.Message)
		sizes = append(sizes, len(m.Payload))
		if m.Metadata.Get("via") != "relay" || claimcheck.IsClaimChecked(claimcheck.MapHeaders(m.Metadata)) {
			t.Errorf("metadata %v", m.Metadata)
		}
		return true
	})
	if len(sizes) != 2 || sizes[0]+sizes[1] != len(big)+5 {
		t.Fatalf("sink payload sizes %v", sizes)
	}
	// The sink's middleware deletes once the handler has returned.
	for deadline := time.Now().Add(5 * time.Second); counters.Snapshot().Deleted < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range []*message.Router{router, plain} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := gc.Close(); err != nil {
		t.Fatal(err)
	}
	s := counters.Snapshot()
	if s.Offloaded != 2 || s.Rehydrated != 2 {
		t.Errorf("counters %+v, want two offloads and two rehydrations (in and out)", s)
	}
	// DeleteAfterAck: both stashes are gone once their messages were acked.
	if s.Deleted != 2 || s.DeleteFailures != 0 {
		t.Errorf("deleted %d stashes (%d failures), want 2", s.Deleted, s.DeleteFailures)
	}
	mu.Lock()
	defer mu.Unlock()
	addrs := map[string]bool{}
	for _, a := range deleted {
		if _, err := e.Stat(context.Background(), a); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("stash %s still there after its message was acked: %v", a, err)
		}
		addrs[a] = true
	}
	if len(addrs) != 2 {
		t.Errorf("deleted %v, want the stashes of in and out", deleted)
	}
}
