package ccwatermill_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/natstest"
)

// natsFactory talks to an embedded JetStream server with the stock 1 MiB
// max_payload.
func natsFactory(srv *natstest.Server) pubSubFactory {
	return func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		js := wmnats.JetStreamConfig{
			AutoProvision:    true,
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
			DurablePrefix:    group + watermill.NewShortUUID(),
		}
		pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
			URL:       srv.URL(),
			Marshaler: &wmnats.NATSMarshaler{},
			JetStream: js,
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
			URL:            srv.URL(),
			Unmarshaler:    &wmnats.NATSMarshaler{},
			AckWaitTimeout: 5 * time.Second,
			CloseTimeout:   5 * time.Second,
			NakDelay:       wmnats.NewStaticDelay(10 * time.Millisecond),
			JetStream:      js,
		}, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
}

func TestConformanceNATS(t *testing.T) {
	srv := natstest.Start(t)
	claimchecktest.RunConformanceTests(t, newHarness(natsFactory(srv)),
		claimchecktest.Features{MaxMessageBytes: 1 << 20})
}
