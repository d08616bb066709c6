package ccnats

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// fakeBatch is a fetched batch of messages already received.
type fakeBatch struct{ ch chan jetstream.Msg }

func (f fakeBatch) Messages() <-chan jetstream.Msg { return f.ch }
func (f fakeBatch) Error() error                   { return nil }

// oneMsg is a messages iterator that returns the same message forever.
type oneMsg struct {
	jetstream.MessagesContext
	m jetstream.Msg
}

func (o oneMsg) Next(...jetstream.NextOpt) (jetstream.Msg, error) { return o.m, nil }

// fastPaths is each decorator's own work on a message below the threshold:
// every publish fast path, every receive path on a message that is not
// claim-checked, with the message and everything else made beforehand.
// The publish paths read the max_payload of a connection to an idle
// embedded server (1 MiB, and 64 KiB for one of them); nothing is sent.
func fastPaths(t testing.TB) ([]struct {
	name string
	f    func()
}, *claimcheck.Counters) {
	eng, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	counts := &claimcheck.Counters{}
	cc, err := claimcheck.New(eng, claimcheck.WithObserver(counts))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nc := natstest.Start(t).Connect(t)
	// A server whose max_payload (64 KiB) is under the threshold: the
	// headers' wire size is added up for each message.
	small := natstest.Start(t, func(o *server.Options) { o.MaxPayload = 64 << 10 }).Connect(t)
	mp, smallMP := newMaxPayload(nc), newMaxPayload(small)
	body := make([]byte, 1024)
	withHeader := &nats.Msg{Subject: "s", Data: body, Header: nats.Header{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}
	bare := &nats.Msg{Subject: "s", Data: body}
	wc := &WrappedConn{cc: cc, cfg: newBase(nil), js: newConsumer(cc, nil)}
	noop := func(*nats.Msg) {}
	wcHandler, msgHandler := wc.handler(noop), MsgHandler(cc, noop)
	jm := jetstream.Msg(legacyMsg{withHeader})
	jsHandler := MessageHandler(cc, func(jetstream.Msg) {})
	it := Messages(cc, oneMsg{m: jm})
	return []struct {
		name string
		f    func()
	}{
		{"publish-no-headers", func() { _ = pass(ctx, mp, cc, "s", body) }},
		{"publish-headers", func() { _ = passes(ctx, mp, cc, withHeader) }},
		{"publish-headers-small-max-payload", func() { _ = passes(ctx, smallMP, cc, withHeader) }},
		{"MsgHandler", func() { msgHandler(withHeader) }},
		{"MsgHandler-no-headers", func() { msgHandler(bare) }},
		{"WrappedConn-handler", func() { wcHandler(withHeader) }},
		{"WrappedConn-NextMsg-Fetch", func() { _, _ = wc.deliver(withHeader) }},
		{"WrappedConn-reply", func() { _ = wc.rehydrateReply(withHeader) }},
		{"WrappedConn.Rehydrate", func() { _ = wc.Rehydrate(ctx, withHeader) }},
		{"MessageHandler", func() { jsHandler(jm) }},
		{"Messages.Next", func() { _, _ = it.Next() }},
		{"Rehydrate", func() { _, _ = Rehydrate(ctx, cc, jm) }},
	}, counts
}

// TestBelowThresholdAllocates checks that each decorator's own work on a
// message below the threshold allocates nothing. (The benchmarks measure
// the whole path with a server; allocations there are counted
// process-wide and include the server's.)
func TestBelowThresholdAllocates(t *testing.T) {
	paths, counts := fastPaths(t)
	for _, tc := range paths {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per message, want 0", tc.name, n)
		}
	}
	// Every one of them was counted (nothing is skipped to be fast).
	if s := counts.Snapshot(); s.Passed == 0 || s.Plain == 0 {
		t.Errorf("observer saw %d passes and %d plain messages", s.Passed, s.Plain)
	}
}

// TestBatchAllocates checks that Batch, which owns a channel and a
// goroutine, allocates three times per batch and never per message that is
// not claim-checked.
func TestBatchAllocates(t *testing.T) {
	eng, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cc, err := claimcheck.New(eng)
	if err != nil {
		t.Fatal(err)
	}
	jm := jetstream.Msg(legacyMsg{&nats.Msg{Subject: "s", Data: make([]byte, 1024), Header: nats.Header{"k": {"v"}}}})
	ctx := context.Background()
	// Allocations per batch of n messages, read through Batch or not: the
	// difference is Batch's.
	perBatch := func(n int, decorate bool) float64 {
		return testing.AllocsPerRun(100, func() {
			var in jetstream.MessageBatch = fakeBatch{ch: make(chan jetstream.Msg, n)}
			for range n {
				in.(fakeBatch).ch <- jm
			}
			close(in.(fakeBatch).ch)
			if decorate {
				in = Batch(ctx, cc, in)
			}
			got := 0
			for range in.Messages() {
				got++
			}
			if got != n {
				t.Fatalf("got %d of %d messages", got, n)
			}
		})
	}
	one := perBatch(1, true) - perBatch(1, false)
	hundred := perBatch(100, true) - perBatch(100, false)
	t.Logf("Batch: %v allocations per batch of 1, %v per batch of 100", one, hundred)
	if one > 3 || hundred != one {
		t.Errorf("Batch allocates %v times for 1 message and %v for 100; want at most 3, the same for both", one, hundred)
	}
}

// BenchmarkFastPath is each decorator's own work on a message below the
// threshold, as TestBelowThresholdAllocates runs it: ns/op, allocs/op.
func BenchmarkFastPath(b *testing.B) {
	paths, _ := fastPaths(b)
	for _, tc := range paths {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.f()
			}
		})
	}
}
