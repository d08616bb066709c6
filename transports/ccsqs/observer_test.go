package ccsqs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// An observer that propagates trace context (otelstash) adds traceparent
// to an offloaded message after ExtendedPayloadSize: with 8 attributes of
// the producer's the message goes out with 10 and is read back; with 9 it
// would carry 11, which SQS refuses, and SendMessage says so
// (ErrTooManyAttributes) instead of sending it without its trace context.
func TestObserverHeadersCounted(t *testing.T) {
	r := newRig(t)
	url := r.queue(t, nil)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(ctxT(t)) })
	inst, err := otelstash.New(otelstash.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	c := ccsqs.New(r.sqs, r.checker(t, inst.CheckerOption()))
	attrs := func(n int) map[string]types.MessageAttributeValue {
		m := map[string]types.MessageAttributeValue{}
		for i := range n {
			m[fmt.Sprintf("a%d", i)] = str("v")
		}
		return m
	}
	big := text(300_000, 70)
	if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(big), MessageAttributes: attrs(8)}); err != nil {
		t.Fatal(err)
	}
	raw := receiveAll(t, r.sqs, url, 1)[0]
	if _, ok := raw.MessageAttributes["traceparent"]; !ok || len(raw.MessageAttributes) != 10 {
		t.Fatalf("sent with %d attributes (traceparent: %v), want 8, ExtendedPayloadSize and traceparent", len(raw.MessageAttributes), ok)
	}
	if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(big), MessageAttributes: attrs(9)}); !errors.Is(err, ccsqs.ErrTooManyAttributes) {
		t.Fatalf("9 attributes, the pointer's and the observer's: %v, want ErrTooManyAttributes", err)
	}
}
