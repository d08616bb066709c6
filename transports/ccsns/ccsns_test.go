package ccsns_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsns"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const bucket = "claimstash-sns"

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func checker(t *testing.T, minio *miniotest.Server, opts ...claimcheck.Option) *claimcheck.Checker {
	st, err := s3stash.New(minio.Client())
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	c, err := claimcheck.New(e, append([]claimcheck.Option{claimcheck.WithContract(claimcheck.ContractAWSPointer)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An SNS topic fans a large message out to two SQS queues (raw delivery):
// each gets the pointer, each reads the payload, and the first consumer's
// delete does not take the object from the second (sqs-java #40).
func TestFanOut(t *testing.T) {
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS, rawSQS := sns.NewFromConfig(moto.Config()), sqs.NewFromConfig(moto.Config())
	cc := checker(t, minio)
	pub := ccsns.New(rawSNS, cc)
	topic, err := rawSNS.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	var queues []string
	for i := range 2 {
		q, err := rawSQS.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("orders-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		arn := fmt.Sprintf("arn:aws:sqs:%s:%s:orders-%d", mototest.Region, mototest.Account, i)
		if _, err := rawSNS.Subscribe(ctxT(t), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
			Endpoint: aws.String(arn), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
			t.Fatal(err)
		}
		queues = append(queues, aws.ToString(q.QueueUrl))
	}
	payload := strings.Repeat("order line\n", 50_000) // 550 KB: over SNS's limit
	if _, err := rawSNS.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(payload)}); err == nil {
		t.Log("note: the server accepted a message over SNS's limit without claimstash")
	}
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(payload),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("order")}}}); err != nil {
		t.Fatal(err)
	}
	sub := ccsqs.New(rawSQS, cc)
	for i, q := range queues {
		var got string
		deadline := time.Now().Add(20 * time.Second)
		for got == "" && time.Now().Before(deadline) {
			out, err := sub.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				if aws.ToString(m.MessageAttributes["kind"].StringValue) != "order" {
					continue // the raw publish above, if the server took it
				}
				got = aws.ToString(m.Body)
				if _, err := rawSQS.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got != payload {
			t.Fatalf("queue %d: got %d bytes, want the %d-byte payload", i, len(got), len(payload))
		}
	}
}

func TestLimits(t *testing.T) {
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS := sns.NewFromConfig(moto.Config())
	pub := ccsns.New(rawSNS, checker(t, minio))
	topic, err := rawSNS.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String("limits")})
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]snstypes.MessageAttributeValue{}
	for i := range 10 {
		attrs[fmt.Sprintf("a%d", i)] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("v")}
	}
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(strings.Repeat("x", 300_000)), MessageAttributes: attrs}); !errors.Is(err, ccsns.ErrTooManyAttributes) {
		t.Fatalf("10 attributes and an offload: %v, want ErrTooManyAttributes", err)
	}
	// A mark that does not match the body is refused: no subscriber could
	// read it.
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(strings.Repeat("p", 200_000)),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: {DataType: aws.String("Number"), StringValue: aws.String("200000")}}}); !errors.Is(err, claimcheck.ErrMalformed) {
		t.Fatalf("ExtendedPayloadSize on a payload: %v, want claimcheck.ErrMalformed", err)
	}
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("small"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: {DataType: aws.String("Binary"), BinaryValue: []byte("5")}}}); !errors.Is(err, claimcheck.ErrMalformed) {
		t.Fatalf("a Binary ExtendedPayloadSize: %v, want claimcheck.ErrMalformed", err)
	}
	// The override is removed by the offload: 9 attributes and the
	// override go out as the 9 and ExtendedPayloadSize.
	nine := map[string]snstypes.MessageAttributeValue{claimcheck.HeaderOffload: {DataType: aws.String("String"), StringValue: aws.String(claimcheck.OffloadAlways)}}
	for i := range 9 {
		nine[fmt.Sprintf("a%d", i)] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("v")}
	}
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String("small, offloaded on request"), MessageAttributes: nine}); err != nil {
		t.Fatalf("9 attributes and the override: %v", err)
	}
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, MessageStructure: aws.String("json"),
		Message: aws.String(`{"default":"` + strings.Repeat("x", 300_000) + `"}`)}); !errors.Is(err, ccsns.ErrTooLarge) {
		t.Fatalf("a large per-protocol message: %v, want ErrTooLarge", err)
	}
	// A batch of 11 is SNS's to refuse, before any stash is written for it.
	objects := func() int {
		out, err := minio.Client().ListObjectsV2(ctxT(t), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Contents)
	}
	before := objects()
	var eleven []snstypes.PublishBatchRequestEntry
	for i := range 11 {
		eleven = append(eleven, snstypes.PublishBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), Message: aws.String("small"),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{claimcheck.HeaderOffload: {DataType: aws.String("String"), StringValue: aws.String(claimcheck.OffloadAlways)}}})
	}
	if _, err := pub.PublishBatch(ctxT(t), &sns.PublishBatchInput{TopicArn: topic.TopicArn, PublishBatchRequestEntries: eleven}); err == nil {
		t.Fatal("a batch of 11 was published")
	}
	if n := objects() - before; n != 0 {
		t.Fatalf("%d stashes written for a batch SNS refuses", n)
	}
	var entries []snstypes.PublishBatchRequestEntry
	for i := range 10 {
		entries = append(entries, snstypes.PublishBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), Message: aws.String(strings.Repeat("y", 100_000))})
	}
	// A checker in mode Never keeps every body in its message, the
	// batch's limit too: nothing is stored, and the batch is refused.
	before = objects()
	never := ccsns.New(rawSNS, checker(t, minio, claimcheck.WithMode(claimcheck.Never)))
	if _, err := never.PublishBatch(ctxT(t), &sns.PublishBatchInput{TopicArn: topic.TopicArn, PublishBatchRequestEntries: entries}); !errors.Is(err, ccsns.ErrTooLarge) {
		t.Fatalf("batch of 1 MB under mode Never: %v, want ErrTooLarge", err)
	}
	if n := objects() - before; n != 0 {
		t.Fatalf("%d stashes written under mode Never", n)
	}
	out, err := pub.PublishBatch(ctxT(t), &sns.PublishBatchInput{TopicArn: topic.TopicArn, PublishBatchRequestEntries: entries})
	if err != nil || len(out.Successful) != 10 {
		t.Fatalf("batch of 1 MB: %v, %d published", err, len(out.Successful))
	}
}
