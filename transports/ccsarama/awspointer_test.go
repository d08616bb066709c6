package ccsarama_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// awsChecker is a checker writing AWS pointers, its stashes on MinIO.
func awsChecker(t *testing.T) *claimcheck.Checker {
	t.Helper()
	const bucket = "ccsarama-aws"
	srv := miniotest.Start(t, bucket)
	st, err := s3stash.New(srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	c, err := claimcheck.New(e, claimcheck.WithContract(claimcheck.ContractAWSPointer))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A checker built with the AWS pointer contract writes pointers that every
// consumer wrapper rehydrates: the group handler's path for messages that
// are not claim-checked must not take a pointer for a payload.
func TestAWSPointerContract(t *testing.T) { eachKafka(t, testAWSPointerContract) }

func testAWSPointerContract(t *testing.T, k *kafkatest.Broker) {
	c := awsChecker(t)
	topic := k.NewTopic(t, "aws", 1, nil)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	body := random(t, 400<<10) // over the default threshold
	msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body)}
	if _, _, err := p.SendMessageContext(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if !claimcheck.IsAWSPointer(ccsarama.ProducerHeaders(msg)) {
		t.Fatalf("the message was not sent as an AWS pointer: headers %v", msg.Headers)
	}

	t.Run("group", func(t *testing.T) {
		col := newCollector("aws")
		runGroup(t, k.Addrs, cfg, "g-aws", []string{topic}, ccsarama.WrapConsumerGroupHandler(col, c))
		m := receive(t, col.got, 1, 30*time.Second)[0]
		sameBytes(t, "group handler", m.Value, body)
		if claimcheck.IsAWSPointer(ccsarama.ConsumerHeaders(m)) {
			t.Errorf("pointer attribute left on the delivered message: %v", m.Headers)
		}
	})
	t.Run("partition", func(t *testing.T) {
		sc, err := sarama.NewConsumer(k.Addrs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		pc, err := ccsarama.WrapConsumer(sc, c).ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.AsyncClose()
		m := receive(t, pc.Messages(), 1, 30*time.Second)[0]
		sameBytes(t, "partition consumer", m.Value, body)
	})
	// The drop-in interceptor delivers a message it cannot rehydrate as it
	// came; IsClaimChecked is what tells the application not to process
	// it, and it must say so for a pointer too.
	t.Run("interceptor", func(t *testing.T) {
		p, _, ok, err := claimcheck.ParseAWSPointer(encoded(t, msg.Value), ccsarama.ProducerHeaders(msg))
		if !ok || err != nil {
			t.Fatalf("pointer: %v %v", ok, err)
		}
		if err := c.Engine().Delete(context.Background(), "s3://"+p.Bucket+"/"+p.Key); err != nil {
			t.Fatal(err)
		}
		icfg := config()
		icfg.Consumer.Interceptors = []sarama.ConsumerInterceptor{ccsarama.NewConsumerInterceptor(c, ccsarama.WithLogger(slog.New(slog.DiscardHandler)))}
		col := newCollector("aws-interceptor")
		runGroup(t, k.Addrs, icfg, "g-aws-interceptor", []string{topic}, col)
		m := receive(t, col.got, 1, 30*time.Second)[0]
		if !claimcheck.IsAWSPointer(ccsarama.ConsumerHeaders(m)) {
			t.Fatalf("the interceptor rehydrated a message whose stash is gone: %d bytes", len(m.Value))
		}
		if !ccsarama.IsClaimChecked(m) {
			t.Error("IsClaimChecked is false for a pointer the interceptor could not rehydrate: the application would take the pointer for the payload")
		}
	})
}

func encoded(t *testing.T, e sarama.Encoder) []byte {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With the AWS pointer contract too, a message under the threshold but
// over Producer.MaxMessageBytes is offloaded, as a pointer, and arrives
// rehydrated.
func TestAWSPointerOverMaxMessageBytes(t *testing.T) {
	c := awsChecker(t)
	k := startKafka(t, 1)
	k.CreateTopic(t, "aws-cap", 1, nil)
	cfg := capConfig()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	body := random(t, 100<<10)
	msg := &sarama.ProducerMessage{Topic: "aws-cap", Key: sarama.StringEncoder("k"), Value: sarama.ByteEncoder(body),
		Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte("v")}}}
	floor := ccsarama.ReferenceFloor(c, msg, len(body))
	if _, _, err := p.SendMessage(msg); err != nil {
		t.Fatal(err)
	}
	if !claimcheck.IsAWSPointer(ccsarama.ProducerHeaders(msg)) {
		t.Fatalf("not sent as an AWS pointer: %d bytes, headers %v", msg.Value.Length(), msg.Headers)
	}
	// The floor is the pointer message with the shortest pointer.
	shortest := len(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "aaa", Key: "a." + strings.Repeat("0", 64)}))
	if got, want := msg.ByteSize(2)-floor, msg.Value.Length()-shortest; got != want {
		t.Errorf("the pointer message is %d bytes over the floor %d, want %d", got, floor, want)
	}
	col := newCollector("aws-cap")
	runGroup(t, k.Addrs, cfg, "g-aws-cap", []string{"aws-cap"}, ccsarama.WrapConsumerGroupHandler(col, c))
	m := receive(t, col.got, 1, 30*time.Second)[0]
	sameBytes(t, "rehydrated", m.Value, body)
	if v, _ := header(m, "h"); v != "v" || len(m.Headers) != 1 {
		t.Errorf("received headers %v", m.Headers)
	}
}
