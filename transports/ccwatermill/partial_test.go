package ccwatermill_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// failingPuts is memstash whose Puts fail from the nth on, while fail is set.
type failingPuts struct {
	*memstash.Store
	puts, from atomic.Int64
}

var errStoreDown = errors.New("test: store down")

func (f *failingPuts) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	if n := f.puts.Add(1); f.from.Load() > 0 && n >= f.from.Load() {
		return errStoreDown
	}
	return f.Store.Put(ctx, ns, key, r, size, a)
}

// Publish of several messages whose second offload fails: nothing is
// published, the error is the stash's, and retrying the same Publish once
// the store is back offloads only what was not offloaded yet and publishes
// every message, each a reference to a stash that holds its payload.
func TestPublishSecondOffloadFails(t *testing.T) {
	st := &failingPuts{Store: memstash.New()}
	st.from.Store(2)
	e, err := stash.New(stash.WithBackend(st))
	if err != nil {
		t.Fatal(err)
	}
	var counters claimcheck.Counters
	c, err := claimcheck.New(e, claimcheck.WithThreshold(100), claimcheck.WithMargin(0), claimcheck.WithObserver(&counters))
	if err != nil {
		t.Fatal(err)
	}
	gc := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer gc.Close()
	pub := ccwatermill.NewPublisher(gc, c)
	bodies := [][]byte{bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000), []byte("small")}
	msgs := make([]*message.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = message.NewMessage(watermill.NewUUID(), bytes.Clone(b))
	}
	if err := pub.Publish("t", msgs...); !errors.Is(err, errStoreDown) {
		t.Fatalf("Publish: %v, want the store's error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	ch, err := gc.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := <-ch; ok {
		t.Fatalf("published despite the failed offload: %q", got.Payload)
	}
	cancel()
	if !bytes.Equal(msgs[1].Payload, bodies[1]) || claimcheck.IsClaimChecked(claimcheck.MapHeaders(msgs[1].Metadata)) {
		t.Fatal("the message whose offload failed was changed")
	}

	st.from.Store(0) // the store is back
	if err := pub.Publish("t", msgs...); err != nil {
		t.Fatal(err)
	}
	if s := counters.Snapshot(); s.Offloaded != 2 || s.OffloadFailures != 1 {
		t.Errorf("offloads %d, failures %d; want 2 and 1 (the retry offloads only the second)", s.Offloaded, s.OffloadFailures)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	ch, err = gc.Subscribe(sctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for i, m := range msgs {
		want[m.UUID] = bodies[i]
	}
	for range bodies {
		var m *message.Message
		select {
		case m = <-ch:
		case <-sctx.Done():
			t.Fatalf("%d messages not published", len(want))
		}
		m.Ack()
		body, ok := want[m.UUID]
		if !ok {
			t.Fatalf("message %s published twice, or never sent", m.UUID)
		}
		delete(want, m.UUID)
		if len(body) > 100 && !claimcheck.IsClaimChecked(claimcheck.MapHeaders(m.Metadata)) {
			t.Errorf("message %s went out without its offload", m.UUID)
		}
		data, _, err := c.Rehydrate(context.Background(), "t", m.Payload, claimcheck.MapHeaders(m.Metadata))
		if err != nil {
			t.Fatalf("message %s: %v", m.UUID, err)
		}
		if !bytes.Equal(data, body) {
			t.Errorf("message %s: %.20q…, want %.20q…", m.UUID, data, body)
		}
	}
}
