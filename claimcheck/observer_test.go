package claimcheck_test

import (
	"context"
	"errors"
	"strings"
	"sync"
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
