package ccsns_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsns"
)

// An observer that propagates trace context adds its header to an
// offloaded message after the contract's. SNS takes the message with 11
// attributes, but its raw delivery to an SQS queue fails (SQS takes 10),
// so the message would be lost: Publish counts the attributes the
// message goes out with, not only those it came with.
func TestObserverHeadersCounted(t *testing.T) {
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS, rawSQS := sns.NewFromConfig(moto.Config()), sqs.NewFromConfig(moto.Config())
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(ctxT(t)) })
	inst, err := otelstash.New(otelstash.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3stash.New(minio.Client())
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	cc, err := claimcheck.New(e, claimcheck.WithContract(claimcheck.ContractAWSPointer), inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	pub := ccsns.New(rawSNS, cc)
	topic, err := rawSNS.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String("traced")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := rawSQS.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String("traced")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawSNS.Subscribe(ctxT(t), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String(fmt.Sprintf("arn:aws:sqs:%s:%s:traced", mototest.Region, mototest.Account)),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	attrs := func(n int) map[string]snstypes.MessageAttributeValue {
		m := map[string]snstypes.MessageAttributeValue{}
		for i := range n {
			m[fmt.Sprintf("a%d", i)] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("v")}
		}
		return m
	}
	big := strings.Repeat("t", 300_000)

	// 8 attributes, ExtendedPayloadSize and traceparent: 10, delivered.
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(big), MessageAttributes: attrs(8)}); err != nil {
		t.Fatal(err)
	}
	out, err := rawSQS.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 5, MessageAttributeNames: []string{"All"}})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	got := out.Messages[0].MessageAttributes
	if _, ok := got["traceparent"]; !ok || len(got) != 10 {
		t.Fatalf("delivered with %d attributes (traceparent: %v), want 8, ExtendedPayloadSize and traceparent", len(got), ok)
	}

	// 9 attributes: the observer's header makes 11.
	_, err = pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(big), MessageAttributes: attrs(9)})
	if !errors.Is(err, ccsns.ErrTooManyAttributes) {
		t.Fatalf("9 attributes, the pointer's and the observer's: %v, want ErrTooManyAttributes", err)
	}
}
