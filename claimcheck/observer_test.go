package claimcheck_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// startRecorder is a Starter that records what it is told, and marks the
// context it returns so Observe can check it got it back.
type startRecorder struct {
	mu     sync.Mutex
	events []string
}

type startKey struct{}

func (r *startRecorder) Start(ctx context.Context, ev claimcheck.Event) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "start "+ev.Op+" "+ev.Topic)
	return context.WithValue(ctx, startKey{}, ev.Op)
}

func (r *startRecorder) Observe(ctx context.Context, ev claimcheck.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	started, _ := ctx.Value(startKey{}).(string)
	outcome := "ok"
	if ev.Err != nil {
		outcome = "err"
	}
	if ev.Headers == nil && ev.Op != claimcheck.OpDelete {
		outcome += " no headers"
	}
	r.events = append(r.events, "observe "+ev.Op+" "+ev.Topic+" started="+started+" "+outcome)
}

func TestObserverSeesEveryMessage(t *testing.T) {
	ctx := context.Background()
	rec := &startRecorder{}
	var counters claimcheck.Counters
	c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithThreshold(4<<10), claimcheck.DeleteAfterAck(),
		claimcheck.WithObserver(claimcheck.Observers(rec, &counters)))

	small, big := []byte("small"), payload(8<<10)
	h := claimcheck.MapHeaders{}
	if out, _, err := c.Offload(ctx, "t", small, h); err != nil || string(out) != "small" {
		t.Fatalf("offload small: %q, %v", out, err)
	}
	if _, _, err := c.Rehydrate(ctx, "t", small, h); err != nil {
		t.Fatal(err)
	}
	h = claimcheck.MapHeaders{}
	ref, addr, err := c.Offload(ctx, "t", big, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Rehydrate(ctx, "t", ref, h); err != nil {
		t.Fatal(err)
	}
	if err := c.Acked(ctx, addr); err != nil {
		t.Fatal(err)
	}
	h = claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "8192"}
	if _, _, err := c.Rehydrate(ctx, "t", ref, h); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("rehydrate after delete: %v", err)
	}
	want := []string{
		"observe pass t started= ok",
		"observe plain t started= ok",
		"start offload t", "observe offload t started=offload ok",
		"start rehydrate t", "observe rehydrate t started=rehydrate ok",
		"start delete ", "observe delete  started=delete ok",
		"start rehydrate t", "observe rehydrate t started=rehydrate err",
	}
	if got := strings.Join(rec.events, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	snap := counters.Snapshot()
	if snap.Passed != 1 || snap.Plain != 1 || snap.Offloaded != 1 || snap.Rehydrated != 1 || snap.RehydrateFailures != 1 || snap.Deleted != 1 {
		t.Errorf("counters: %+v", snap)
	}
}

// A nil observer, alone, in Observers, or a nil *Counters, observes
// nothing: the zero value is useful, and no message path panics on it.
func TestNilObserver(t *testing.T) {
	ctx := context.Background()
	var nilCounters *claimcheck.Counters
	var counters claimcheck.Counters
	for name, o := range map[string]claimcheck.Observer{
		"nil":               nil,
		"nil in Observers":  claimcheck.Observers(nil, &counters),
		"nil *Counters":     nilCounters,
		"nil ObserverFunc":  claimcheck.ObserverFunc(nil),
		"Observers of none": claimcheck.Observers(),
	} {
		c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithThreshold(4<<10), claimcheck.WithObserver(o))
		h := claimcheck.MapHeaders{}
		ref, _, err := c.Offload(ctx, "t", payload(8<<10), h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, _, err := c.Rehydrate(ctx, "t", ref, h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Pass(ctx, "t", []byte("small"), claimcheck.MapHeaders{}) != true {
			t.Fatalf("%s: a small message does not pass", name)
		}
	}
	if snap := counters.Snapshot(); snap.Offloaded != 1 || snap.Rehydrated != 1 || snap.Passed != 1 {
		t.Errorf("the observer beside the nil one: %+v", snap)
	}
}

// An observer that panics on a successful rehydration panics the caller,
// and leaves the message as it arrived: still claim-checked, its body
// still the address. Had the contract headers gone before the body was
// replaced, a retry of the same message (Watermill's Retry and Recoverer
// middlewares do that) would hand the address to the handler as a plain
// payload.
func TestObserverPanicLeavesMessageWhole(t *testing.T) {
	ctx := context.Background()
	for _, aws := range []bool{false, true} {
		var panicking atomic.Bool
		obs := claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
			if ev.Op == claimcheck.OpRehydrate && ev.Err == nil && panicking.Load() {
				panic("observer")
			}
		}))
		var c *claimcheck.Checker
		if aws {
			c, _ = awsChecker(t, claimcheck.WithMode(claimcheck.Always), obs)
		} else {
			c = newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMode(claimcheck.Always), obs)
		}
		want := payload(2000)
		h := claimcheck.MapHeaders{"k": "v"}
		body, _, err := c.Offload(ctx, "t", want, h)
		if err != nil {
			t.Fatal(err)
		}
		sent, sentHeaders := string(body), maps.Clone(h)
		panicking.Store(true)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("aws=%v: the observer's panic was swallowed", aws)
				}
			}()
			_, _, _ = c.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: "t", Body: &body, Headers: h})
		}()
		if string(body) != sent || !maps.Equal(map[string]string(h), map[string]string(sentHeaders)) {
			t.Fatalf("aws=%v: after the panic the message is %q %v; want it as it arrived, %q %v", aws, body, h, sent, sentHeaders)
		}
		panicking.Store(false)
		if _, d, err := c.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: "t", Body: &body, Headers: h}); d != claimcheck.Deliver || err != nil || !bytes.Equal(body, want) {
			t.Fatalf("aws=%v: retry: %v %v, %d bytes", aws, d, err, len(body))
		}
	}
}
