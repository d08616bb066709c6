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
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// failOnce is a publisher whose first Publish fails.
type failOnce struct {
	message.Publisher
	failed atomic.Bool
}

func (p *failOnce) Publish(topic string, msgs ...*message.Message) error {
	if p.failed.CompareAndSwap(false, true) {
		return errors.New("broker refused the produced message")
	}
	return p.Publisher.Publish(topic, msgs...)
}

// With DeleteAfterAck, the middleware must not delete a stash when its
// handler returns: the router acknowledges only after it has published what
// the handler produced, and nacks the message when that fails. A stash
// deleted at the handler's return is gone when the nacked message comes
// back, and the message can never be handled again.
func TestMiddlewareDeletesOnlyOnceAcked(t *testing.T) {
	var counters claimcheck.Counters
	c, e := newChecker(t, claimcheck.WithThreshold(1<<10), claimcheck.DeleteAfterAck(), claimcheck.WithObserver(&counters))
	gc := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer gc.Close()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddMiddleware(ccwatermill.Middleware(c))

	big := bytes.Repeat([]byte("payload!"), 1<<10)
	var mu sync.Mutex
	var seen [][]byte // the payloads the handler got, in order
	handled := make(chan struct{}, 10)
	router.AddHandler("relay", "in", gc, "out", &failOnce{Publisher: gc}, func(msg *message.Message) ([]*message.Message, error) {
		mu.Lock()
		seen = append(seen, bytes.Clone(msg.Payload))
		mu.Unlock()
		handled <- struct{}{}
		return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte("done"))}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	var addr string
	msg := message.NewMessage("1", big)
	if err := ccwatermill.NewPublisher(gc, c).Publish("in", msg); err != nil {
		t.Fatal(err)
	}
	addr = string(msg.Payload)
	if !claimcheck.IsClaimChecked(claimcheck.MapHeaders(msg.Metadata)) {
		t.Fatal("the message was not claim-checked")
	}
	// First delivery: handled, but its produced message is refused, so the
	// router nacks it; the second delivery must rehydrate as the first did.
	for i := range 2 {
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			s := counters.Snapshot()
			t.Fatalf("delivery %d never reached the handler (%d rehydrate failures, %d deleted)", i+1, s.RehydrateFailures, s.Deleted)
		}
	}
	// Once the second delivery was acked, its stash goes.
	deadline := time.Now().Add(5 * time.Second)
	for counters.Snapshot().Deleted < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := router.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range seen {
		if !bytes.Equal(p, big) {
			t.Errorf("delivery %d: handler got %d bytes, not the payload", i+1, len(p))
		}
	}
	s := counters.Snapshot()
	if s.RehydrateFailures != 0 {
		t.Errorf("%d rehydrate failures: the stash was deleted before the message was acked", s.RehydrateFailures)
	}
	if s.Deleted != 1 {
		t.Errorf("deleted %d stashes, want 1 (after the ack)", s.Deleted)
	}
	if _, err := e.Stat(context.Background(), addr); !errors.Is(err, stash.ErrNotFound) {
		t.Errorf("stash still there after its message was acked: %v", err)
	}
}
