package ccwatermill_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// counting is an observer that counts successful offloads.
type counting struct{ n int }

func (c *counting) Observe(_ context.Context, ev claimcheck.Event) {
	if ev.Op == claimcheck.OpOffload && ev.Err == nil {
		c.n++
	}
}

// The size the publisher's policy compares counts what Watermill's Kafka
// and NATS marshalers turn the metadata into, the UUID header they add
// included: a message whose payload plus marshaled header bytes plus the
// margin is at the threshold is sent as it is, one byte more is offloaded.
func TestCountsMarshaledHeaders(t *testing.T) {
	const threshold = 64 << 10
	md := message.Metadata{"trace": "abc", "tenant": "t-1"}
	marshalers := map[string]func(*message.Message) int{
		"kafka": func(m *message.Message) int {
			pm, err := kafka.DefaultMarshaler{}.Marshal("topic", m)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, h := range pm.Headers {
				n += len(h.Key) + len(h.Value)
			}
			return n
		},
		"nats": func(m *message.Message) int {
			nm, err := (&wmnats.NATSMarshaler{}).Marshal("topic", m)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for k, vs := range nm.Header {
				for _, v := range vs {
					n += len(k) + len(v)
				}
			}
			return n
		},
	}
	for name, marshaled := range marshalers {
		for _, delta := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/%+d", name, delta), func(t *testing.T) {
				var offloads counting
				c, _ := newChecker(t, claimcheck.WithThreshold(threshold), claimcheck.WithObserver(&offloads))
				msg := message.NewMessage(watermill.NewUUID(), nil)
				for k, v := range md {
					msg.Metadata.Set(k, v)
				}
				msg.Payload = make([]byte, threshold-claimcheck.DefaultMargin-marshaled(msg)+delta)
				if err := ccwatermill.Offload(c, "topic", msg); err != nil {
					t.Fatal(err)
				}
				if got, want := offloads.n == 1, delta > 0; got != want {
					t.Errorf("offloaded = %v, want %v", got, want)
				}
			})
		}
	}
}

// Through Watermill's NATS publisher (its marshaler, core NATS) to a real
// nats-server whose max_payload is the threshold: with the default margin,
// a message counted at the threshold fits the server, and one byte more is
// claim-checked.
func TestNATSPublisherAtMaxPayload(t *testing.T) {
	const maxPayload = 64 << 10
	srv := natstest.Start(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	nc := srv.Connect(t)
	raw := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe("limits", raw)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:       srv.URL(),
		Marshaler: &wmnats.NATSMarshaler{},
		JetStream: wmnats.JetStreamConfig{Disabled: true},
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var offloads counting
	c, _ := newChecker(t, claimcheck.WithThreshold(maxPayload), claimcheck.WithObserver(&offloads))
	p := ccwatermill.NewPublisher(pub, c)
	for _, delta := range []int{0, 1} {
		msg := message.NewMessage(watermill.NewUUID(), nil)
		msg.Metadata.Set("tenant", "t-1")
		counted := len("tenant") + len("t-1") + len("_watermill_message_uuid") + len(msg.UUID)
		size := maxPayload - claimcheck.DefaultMargin - counted + delta
		msg.Payload = make([]byte, size)
		before := offloads.n
		if err := p.Publish("limits", msg); err != nil {
			t.Fatalf("%+d: %v", delta, err)
		}
		if got, want := offloads.n > before, delta > 0; got != want {
			t.Errorf("%+d: offloaded = %v, want %v", delta, got, want)
		}
		select {
		case m := <-raw:
			_, marked := m.Header[claimcheck.HeaderVersion]
			if marked != (delta > 0) || !marked && len(m.Data) != size {
				t.Errorf("%+d: the server delivered %d bytes, claim-checked %v", delta, len(m.Data), marked)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%+d: nothing delivered", delta)
		}
	}
}
