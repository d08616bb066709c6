package ccnats_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// watermillJS returns a watermill-nats publisher and subscriber on srv's
// JetStream; the stream (named after the topic) is created by the test.
func watermillJS(t *testing.T, srv *natstest.Server) (message.Publisher, message.Subscriber) {
	t.Helper()
	js := wmnats.JetStreamConfig{
		SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
		DurablePrefix:    "wm" + watermill.NewShortUUID(),
	}
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL: srv.URL(), Marshaler: &wmnats.NATSMarshaler{}, JetStream: js,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL: srv.URL(), Unmarshaler: &wmnats.NATSMarshaler{},
		AckWaitTimeout: 5 * time.Second, CloseTimeout: 5 * time.Second, JetStream: js,
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return pub, sub
}

// ccnats publishes, watermill-nats with the ccwatermill decorator consumes.
func TestInteropToWatermill(t *testing.T) {
	srv := natstest.Start(t)
	raw := srv.JetStream(t)
	cc, _ := newChecker(t)
	js, err := ccnats.NewJetStream(raw, cc)
	if err != nil {
		t.Fatal(err)
	}
	newStream(t, raw, "interop-to-wm", "interop-to-wm")
	_, wsub := watermillJS(t, srv)
	sub := ccwatermill.NewSubscriber(wsub, cc)

	ctx := ctxT(t)
	body := payload(3<<20, 11)
	m := nats.NewMsg("interop-to-wm")
	m.Header.Set("app-key", "from-ccnats")
	m.Data = body
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, "interop-to-wm")
	if err != nil {
		t.Fatal(err)
	}
	wm := recv(t, msgs, 10*time.Second)
	wm.Ack()
	equalBody(t, wm.Payload, body)
	if wm.Metadata.Get("app-key") != "from-ccnats" {
		t.Fatalf("metadata = %v, want app-key preserved", wm.Metadata)
	}
	for k := range wm.Metadata {
		if len(k) > 11 && k[:11] == "claimstash-" {
			t.Fatalf("contract header %s reached the Watermill handler", k)
		}
	}
}

// watermill-nats with the ccwatermill decorator publishes, ccnats consumes.
func TestInteropFromWatermill(t *testing.T) {
	srv := natstest.Start(t)
	raw := srv.JetStream(t)
	cc, _ := newChecker(t)
	s := newStream(t, raw, "interop-from-wm", "interop-from-wm")
	wpub, _ := watermillJS(t, srv)
	pub := ccwatermill.NewPublisher(wpub, cc)

	body := payload(3<<20, 12)
	wm := message.NewMessage(watermill.NewUUID(), body)
	wm.Metadata.Set("app-key", "from-watermill")
	if err := pub.Publish("interop-from-wm", wm); err != nil {
		t.Fatal(err)
	}
	got := make(chan jetstream.Msg, 1)
	cctx, err := newConsumer(t, s, "fromwm").Consume(ccnats.MessageHandler(cc, func(m jetstream.Msg) {
		_ = m.Ack()
		got <- m
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cctx.Stop()
	m := recv(t, got, 10*time.Second)
	equalBody(t, m.Data(), body)
	if m.Headers().Get("app-key") != "from-watermill" || m.Headers().Get(wmnats.WatermillUUIDHdr) != wm.UUID {
		t.Fatalf("headers = %v, want app-key and the Watermill UUID preserved", m.Headers())
	}
	if _, ok := m.Headers()["claimstash-version"]; ok {
		t.Fatalf("contract header left: %v", m.Headers())
	}
}
