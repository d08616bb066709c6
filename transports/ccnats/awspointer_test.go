package ccnats_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// awsChecker is a checker with the AWS pointer contract over a MinIO
// bucket of its own.
func awsChecker(t *testing.T, bucket string) *claimcheck.Checker {
	t.Helper()
	minio := miniotest.Start(t, bucket)
	st, err := s3stash.New(minio.Client())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	cc, err := claimcheck.New(eng, claimcheck.WithContract(claimcheck.ContractAWSPointer))
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// A checker built with the AWS pointer contract writes pointers that every
// consumer path rehydrates: the paths for messages that are not
// claim-checked must not take a pointer for a payload.
func TestAWSPointerContract(t *testing.T) {
	cc := awsChecker(t, "ccnats-aws")
	srv := natstest.Start(t)
	body := payload(2<<20, 11) // over the server's 1 MiB payload limit

	check := func(t *testing.T, what string, data []byte, h nats.Header) {
		t.Helper()
		if !equalBody(t, data, body) {
			t.Errorf("%s: got %d bytes, not the payload", what, len(data))
		}
		if claimcheck.IsAWSPointer(ccnats.Header(h)) {
			t.Errorf("%s: pointer attribute left: %v", what, h)
		}
	}

	t.Run("core", func(t *testing.T) {
		wc, err := ccnats.WrapConn(srv.Connect(t), cc)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *nats.Msg, 1)
		sub, err := wc.Subscribe("aws.core", func(m *nats.Msg) { got <- m })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		raw := srv.Connect(t)
		rawSub, err := raw.SubscribeSync("aws.core")
		if err != nil {
			t.Fatal(err)
		}
		defer rawSub.Unsubscribe()
		if err := raw.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := wc.Publish("aws.core", body); err != nil {
			t.Fatal(err)
		}
		sent, err := rawSub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !claimcheck.IsAWSPointer(ccnats.Header(sent.Header)) {
			t.Fatalf("not sent as an AWS pointer: headers %v", sent.Header)
		}
		m := recv(t, got, 10*time.Second)
		check(t, "WrappedConn.Subscribe", m.Data, m.Header)
	})
	t.Run("jetstream", func(t *testing.T) {
		js, err := ccnats.NewJetStream(srv.JetStream(t), cc)
		if err != nil {
			t.Fatal(err)
		}
		s := newStream(t, js, "AWS", "aws.js")
		if _, err := js.Publish(ctxT(t), "aws.js", body); err != nil {
			t.Fatal(err)
		}
		got := make(chan jetstream.Msg, 1)
		cctx, err := newConsumer(t, s, "consume").Consume(ccnats.MessageHandler(cc, func(m jetstream.Msg) {
			_ = m.Ack()
			got <- m
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer cctx.Stop()
		m := recv(t, got, 10*time.Second)
		check(t, "MessageHandler", m.Data(), m.Headers())

		it, err := newConsumer(t, s, "messages").Messages()
		if err != nil {
			t.Fatal(err)
		}
		it = ccnats.Messages(cc, it)
		defer it.Stop()
		m, err = it.Next(jetstream.NextMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		check(t, "Messages", m.Data(), m.Headers())
	})
}

// With the AWS pointer contract too, a message under the threshold but
// over the server's max_payload is offloaded, as a pointer, and arrives
// rehydrated.
func TestAWSPointerOverMaxPayload(t *testing.T) {
	cc := awsChecker(t, "ccnats-aws-cap")
	e := capServer(t, cc)
	raw := e.wc.Conn
	rawSub, err := raw.SubscribeSync("lim.aws")
	if err != nil {
		t.Fatal(err)
	}
	defer rawSub.Unsubscribe()
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	body := payload(100<<10, 12)
	if err := e.wc.PublishMsg(&nats.Msg{Subject: "lim.aws", Header: nats.Header{"k": {"v"}}, Data: body}); err != nil {
		t.Fatal(err)
	}
	sent, err := rawSub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !claimcheck.IsAWSPointer(ccnats.Header(sent.Header)) {
		t.Fatalf("not sent as an AWS pointer: %d bytes, headers %v", len(sent.Data), sent.Header)
	}
	m := recv(t, e.got, 10*time.Second)
	equalBody(t, m.Data, body)
	if m.Header.Get("k") != "v" || claimcheck.IsAWSPointer(ccnats.Header(m.Header)) {
		t.Errorf("received headers %v", m.Header)
	}
}
