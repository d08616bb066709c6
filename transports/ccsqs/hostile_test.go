package ccsqs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// Messages in the AWS contract that cannot be rehydrated as they are: each
// is a typed failure, never returned (neither as the pointer nor as the
// payload), and left on the queue in flight for the checker's retry delay
// (5 s by default), not made visible again at once.
func TestHostilePointers(t *testing.T) {
	r := newRig(t)
	const payload = "the payload, 32 bytes long......"
	r.putObject(t, "hostile-object", payload)
	pointer := string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: bucket, Key: "hostile-object"}))
	for _, tc := range []struct {
		name  string
		body  string
		attrs map[string]types.MessageAttributeValue
		want  error
	}{
		{"MissingObject", string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: bucket, Key: "never-written"})),
			map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(len(payload))}, stash.ErrNotFound},
		{"SizeSaysLess", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(len(payload) - 1)}, stash.ErrIntegrity},
		{"SizeSaysMore", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(len(payload) + 1)}, stash.ErrIntegrity},
		{"LegacySizeLies", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrLegacyPayloadSize: num(3)}, stash.ErrIntegrity},
		{"SizeNotANumber", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: str("-32")}, claimcheck.ErrMalformed},
		{"BodyNotJSON", "not json at all", map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(len(payload))}, claimcheck.ErrMalformed},
		{"BinarySize", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: {DataType: aws.String("Binary"),
			BinaryValue: []byte("32")}}, claimcheck.ErrMalformed},
		{"BinaryVersion", "s3://" + bucket + "/k", map[string]types.MessageAttributeValue{claimcheck.HeaderVersion: {DataType: aws.String("Binary"),
			BinaryValue: []byte(claimcheck.ContractVersion)}, claimcheck.HeaderSize: num(3)}, claimcheck.ErrMalformed},
		{"BothContracts", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(len(payload)),
			claimcheck.HeaderVersion: str(claimcheck.ContractVersion), claimcheck.HeaderSize: num(len(payload))}, claimcheck.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := r.queue(t, nil)
			if _, err := r.sqs.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(tc.body),
				MessageAttributes: tc.attrs}); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 4)
			c := ccsqs.New(r.sqs, r.checker(t, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
				errs <- f.Err
				return f.Err // not taken: redelivered
			})), ccsqs.WithLogger(quiet))
			out, err := c.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 2, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) != 0 {
				t.Fatalf("returned %q with %d attributes", aws.ToString(out.Messages[0].Body), len(out.Messages[0].MessageAttributes))
			}
			if err := recv(t, errs); !errors.Is(err, tc.want) {
				t.Fatalf("failure %v, want %v", err, tc.want)
			}
			attrs, err := r.sqs.GetQueueAttributes(ctxT(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
				AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
			if err != nil {
				t.Fatal(err)
			}
			if n := attrs.Attributes["ApproximateNumberOfMessages"] + "+" + attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]; n != "0+1" {
				t.Fatalf("queue holds %s messages (visible+in flight), want the one, in flight until the retry delay", n)
			}
		})
	}
}

// A message that arrives at SendMessage already marked (a relay forwarding
// what it received) is sent as it is, never claim-checked twice; one whose
// mark does not match its body (the size attribute on a body that is not a
// pointer, claimstash's contract on a body that is not an address, both
// contracts at once) is refused before anything is sent, as AWS's
// extended clients refuse a message carrying their reserved attribute:
// no consumer could ever read it.
func TestSendMarkedMessages(t *testing.T) {
	r := newRig(t)
	url := r.queue(t, nil)
	c := ccsqs.New(r.sqs, r.checker(t))
	pointer := string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: bucket, Key: "relayed"}))
	for _, tc := range []struct {
		name  string
		body  string
		attrs map[string]types.MessageAttributeValue
	}{
		{"SizeOnAPayload", text(300_000, 60), map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(300_000)}},
		{"LegacySizeOnAPayload", "small", map[string]types.MessageAttributeValue{claimcheck.AttrLegacyPayloadSize: num(5)}},
		{"VersionOnAPayload", "not an address", map[string]types.MessageAttributeValue{claimcheck.HeaderVersion: str(claimcheck.ContractVersion),
			claimcheck.HeaderSize: num(14)}},
		{"BothContracts", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(10),
			claimcheck.HeaderVersion: str(claimcheck.ContractVersion), claimcheck.HeaderSize: num(10)}},
		{"BinarySize", pointer, map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: {DataType: aws.String("Binary"),
			BinaryValue: []byte("10")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(tc.body), MessageAttributes: tc.attrs})
			if !errors.Is(err, claimcheck.ErrMalformed) {
				t.Fatalf("send: %v, want claimcheck.ErrMalformed", err)
			}
			_, err = c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{
				{Id: aws.String("ok"), MessageBody: aws.String("fine")},
				{Id: aws.String("bad"), MessageBody: aws.String(tc.body), MessageAttributes: tc.attrs}}})
			if !errors.Is(err, claimcheck.ErrMalformed) {
				t.Fatalf("batch: %v, want claimcheck.ErrMalformed", err)
			}
		})
	}
	if out, err := r.sqs.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1}); err != nil || len(out.Messages) != 0 {
		t.Fatalf("the queue holds %d messages (%v), want none", len(out.Messages), err)
	}
	// A relayed pointer goes out as it came.
	if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(pointer),
		MessageAttributes: map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(10)}}); err != nil {
		t.Fatal(err)
	}
	m := receiveAll(t, r.sqs, url, 1)[0]
	if aws.ToString(m.Body) != pointer || aws.ToString(m.MessageAttributes[claimcheck.AttrExtendedPayloadSize].StringValue) != "10" {
		t.Fatalf("relayed pointer sent as %q with %v", aws.ToString(m.Body), m.MessageAttributes)
	}
}
