package ccwatermill

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// TestBelowThresholdAllocates checks that each decorator's own work on a
// message below the threshold allocates nothing: the publisher's Offload,
// the subscriber's forwarding of a message that is not claim-checked, and
// Middleware. (The benchmarks measure the whole path through a Pub/Sub,
// whose allocations are counted process-wide.)
func TestBelowThresholdAllocates(t *testing.T) {
	eng, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	counts := &claimcheck.Counters{}
	c, err := claimcheck.New(eng, claimcheck.WithObserver(counts))
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("id", make([]byte, 1024))
	msg.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	bare := &message.Message{UUID: "id", Payload: make([]byte, 1024)} // nil Metadata
	s := &subscriber{c: c, closing: make(chan struct{})}
	out := make(chan *message.Message, 1)
	mw := Middleware(c)(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Offload", func() { _ = Offload(c, "t", msg) }},
		{"Offload, nil metadata", func() { _ = Offload(c, "t", bare) }},
		{"subscriber", func() { s.deliver(ctx, "t", msg, out); <-out }},
		{"Middleware", func() { _, _ = mw(msg) }},
	} {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per message, want 0", tc.name, n)
		}
	}
	if bare.Metadata != nil {
		t.Errorf("Offload gave a message it did not change a metadata map")
	}
	if s := counts.Snapshot(); s.Passed == 0 || s.Plain == 0 {
		t.Errorf("observer saw %d passes and %d plain messages", s.Passed, s.Plain)
	}
}
