package ccwatermill_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// TestUniversalGoChannel runs Watermill's own Pub/Sub suite over a Go
// channel wrapped by both decorators: with the default threshold (every
// suite message passes through) and with every message claim-checked.
func TestUniversalGoChannel(t *testing.T) {
	features := tests.Features{
		ConsumerGroups:        false,
		ExactlyOnceDelivery:   true,
		GuaranteedOrder:       false,
		Persistent:            false,
		RequireSingleInstance: true,
		// Full size (10,000 messages in TestPublisherClose): a few
		// seconds over a Go channel.
		ForceShort: false,
	}
	for _, mode := range []struct {
		name string
		opts []claimcheck.Option
	}{
		{"DefaultThreshold", nil},
		{"AlwaysOffload", []claimcheck.Option{claimcheck.WithMode(claimcheck.Always)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			engine, err := stash.New(stash.WithBackend(memstash.New()))
			if err != nil {
				t.Fatal(err)
			}
			var counters claimcheck.Counters
			// The suite cancels subscriptions on purpose (gochannel gives
			// each message the subscription's context), so a rehydrate may
			// fail with context.Canceled and be nacked: that is correct.
			// Every other failure is a defect.
			var mu sync.Mutex
			var unexpected []error
			record := claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
				if ev.Err != nil && !errors.Is(ev.Err, context.Canceled) && !errors.Is(ev.Err, context.DeadlineExceeded) {
					mu.Lock()
					unexpected = append(unexpected, ev.Err)
					mu.Unlock()
				}
			})
			c, err := claimcheck.New(engine, append(mode.opts, claimcheck.WithObserver(claimcheck.Observers(&counters, record)))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				s := counters.Snapshot()
				t.Logf("offloaded %d, rehydrated %d, failures %d/%d", s.Offloaded, s.Rehydrated, s.OffloadFailures, s.RehydrateFailures)
				if mode.opts != nil && (s.Offloaded == 0 || s.Rehydrated == 0) {
					t.Errorf("nothing was claim-checked: %+v", s)
				}
				if mode.opts == nil && s.Offloaded != 0 {
					t.Errorf("small messages were claim-checked: %+v", s)
				}
				if s.OffloadFailures != 0 {
					t.Errorf("offload failures: %+v", s)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, err := range unexpected {
					t.Errorf("failure other than a cancelled subscription: %v", err)
				}
			})
			tests.TestPubSub(t, features, func(t *testing.T) (message.Publisher, message.Subscriber) {
				gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 10000, Persistent: true}, watermill.NopLogger{})
				return ccwatermill.NewPublisher(gc, c), ccwatermill.NewSubscriber(gc, c)
			}, nil)
		})
	}
}
