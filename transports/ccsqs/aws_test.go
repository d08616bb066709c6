package ccsqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

func str(s string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

func num(n int) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(n))}
}

func receiveAll(t *testing.T, r interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
}, url string, n int) []types.Message {
	t.Helper()
	var got []types.Message
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		out, err := r.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Messages...)
	}
	if len(got) < n {
		t.Fatalf("received %d of %d messages", len(got), n)
	}
	return got
}

func (r *rig) putObject(t *testing.T, key, body string) {
	t.Helper()
	if _, err := r.s3.PutObject(ctxT(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) getObject(t *testing.T, b, key string) (string, error) {
	t.Helper()
	out, err := r.s3.GetObject(ctxT(t), &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	return string(data), err
}

// Messages written by hand as the Java extended client writes them (a
// random key, the pointer body, ExtendedPayloadSize as a Number, or the
// legacy SQSLargePayloadSize with the legacy class) are rehydrated, the
// producer's attributes kept; the S3 objects are still there afterwards.
func TestReadsAWSWrittenMessages(t *testing.T) {
	r := newRig(t)
	url := r.queue(t, nil)
	c := ccsqs.New(r.sqs, r.checker(t))
	payloads := map[string]string{}
	for i, form := range []struct{ class, attr string }{
		{claimcheck.AWSPointerClass, claimcheck.AttrExtendedPayloadSize},
		{claimcheck.AWSLegacyPointerClass, claimcheck.AttrLegacyPayloadSize},
	} {
		key := fmt.Sprintf("6f1c2b9e-4d3a-4f5e-8a7b-%012d", i)
		p := text(300_000+i, uint64(i))
		r.putObject(t, key, p)
		body := fmt.Sprintf(`[%q,{"s3BucketName":%q,"s3Key":%q}]`, form.class, bucket, key)
		if _, err := r.sqs.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body),
			MessageAttributes: map[string]types.MessageAttributeValue{form.attr: num(len(p)), "order": str(strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
		payloads[strconv.Itoa(i)] = p
	}
	for _, m := range receiveAll(t, c, url, 2) {
		order := aws.ToString(m.MessageAttributes["order"].StringValue)
		if aws.ToString(m.Body) != payloads[order] {
			t.Errorf("message %s: body of %d bytes is not the payload", order, len(aws.ToString(m.Body)))
		}
		for _, a := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize} {
			if _, ok := m.MessageAttributes[a]; ok {
				t.Errorf("message %s kept %s", order, a)
			}
		}
		if _, err := r.sqs.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := r.getObject(t, bucket, fmt.Sprintf("6f1c2b9e-4d3a-4f5e-8a7b-%012d", i)); err != nil {
			t.Errorf("object %d gone after receive and delete: %v", i, err)
		}
	}
}

// What claimstash writes in the AWS contract is what an extended client
// parses: the pointer body, ExtendedPayloadSize as a Number, and an object
// under s3Key that a plain GetObject returns as the payload.
func TestWritesAWSContract(t *testing.T) {
	r := newRig(t)
	url := r.queue(t, nil)
	c := ccsqs.New(r.sqs, r.checker(t))
	p := text(400_000, 7)
	if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(p),
		MessageAttributes: map[string]types.MessageAttributeValue{"trace": str("abc")}}); err != nil {
		t.Fatal(err)
	}
	m := receiveAll(t, r.sqs, url, 1)[0]
	var ptr []json.RawMessage
	if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ptr); err != nil || len(ptr) != 2 {
		t.Fatalf("body %q is not a two-element JSON array: %v", aws.ToString(m.Body), err)
	}
	var class string
	var loc struct {
		Bucket string `json:"s3BucketName"`
		Key    string `json:"s3Key"`
	}
	if json.Unmarshal(ptr[0], &class) != nil || class != claimcheck.AWSPointerClass || json.Unmarshal(ptr[1], &loc) != nil {
		t.Fatalf("body %s", aws.ToString(m.Body))
	}
	size := m.MessageAttributes[claimcheck.AttrExtendedPayloadSize]
	if aws.ToString(size.DataType) != "Number" || aws.ToString(size.StringValue) != strconv.Itoa(len(p)) {
		t.Fatalf("ExtendedPayloadSize = %s %s, want Number %d", aws.ToString(size.DataType), aws.ToString(size.StringValue), len(p))
	}
	if aws.ToString(m.MessageAttributes["trace"].StringValue) != "abc" || len(m.MessageAttributes) != 2 {
		t.Fatalf("attributes %v", m.MessageAttributes)
	}
	got, err := r.getObject(t, loc.Bucket, loc.Key)
	if err != nil || got != p {
		t.Fatalf("GetObject(%s, %s): %d bytes, %v; want the payload", loc.Bucket, loc.Key, len(got), err)
	}
}

// SQS's limits: 10 attributes, the message size, the batch total.
func TestLimits(t *testing.T) {
	r := newRig(t)
	t.Run("Attributes", func(t *testing.T) {
		url := r.queue(t, nil)
		var stored []string
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.WithObserver(observer(func(ev claimcheck.Event) {
			if ev.Op == claimcheck.OpOffload {
				stored = append(stored, ev.Address)
			}
		}))))
		attrs := map[string]types.MessageAttributeValue{}
		for i := range 10 {
			attrs[fmt.Sprintf("a%d", i)] = str("v")
		}
		_, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(text(300_000, 1)), MessageAttributes: attrs})
		if !errors.Is(err, ccsqs.ErrTooManyAttributes) {
			t.Fatalf("10 attributes and an offload: %v, want ErrTooManyAttributes", err)
		}
		if len(stored) != 0 {
			t.Errorf("a stash was written for a message that could not be sent: %v", stored)
		}
		// A small message with 10 attributes goes through untouched.
		if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("small"), MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MessageSize", func(t *testing.T) {
		url := r.queue(t, map[string]string{"MaximumMessageSize": "262144"})
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.WithMode(claimcheck.Never)), ccsqs.WithMaxMessageBytes(262144))
		_, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(text(262_100, 2)),
			MessageAttributes: map[string]types.MessageAttributeValue{"attribute": str(strings.Repeat("x", 100))}})
		if !errors.Is(err, ccsqs.ErrTooLarge) {
			t.Fatalf("body and attributes over the limit: %v, want ErrTooLarge", err)
		}
		// The default policy offloads it, and the queue takes the pointer.
		c = ccsqs.New(r.sqs, r.checker(t), ccsqs.WithMaxMessageBytes(262144))
		if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(text(1_500_000, 3))}); err != nil {
			t.Fatal(err)
		}
		if m := receiveAll(t, c, url, 1)[0]; len(aws.ToString(m.Body)) != 1_500_000 {
			t.Fatalf("received %d bytes", len(aws.ToString(m.Body)))
		}
	})
	t.Run("Batch", func(t *testing.T) {
		url := r.queue(t, nil)
		c := ccsqs.New(r.sqs, r.checker(t))
		var entries []types.SendMessageBatchRequestEntry
		want := map[string]string{}
		for i := range ccsqs.MaxBatchEntries {
			id := fmt.Sprintf("e%d", i)
			want[id] = text(200_000, uint64(10+i)) // each under the threshold, 2 MB in all
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(want[id]),
				MessageAttributes: map[string]types.MessageAttributeValue{"id": str(id)}})
		}
		// SQS refuses the batch as it is.
		if _, err := r.sqs.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err == nil {
			t.Fatal("the raw batch of 2 MB was accepted: the server does not check the batch limit")
		}
		out, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Successful) != len(entries) || len(out.Failed) != 0 {
			t.Fatalf("batch: %d sent, %d failed", len(out.Successful), len(out.Failed))
		}
		if aws.ToString(entries[0].MessageBody) != want["e0"] || len(entries[0].MessageAttributes) != 1 {
			t.Fatal("SendMessageBatch changed its input")
		}
		for _, m := range receiveAll(t, c, url, len(entries)) {
			id := aws.ToString(m.MessageAttributes["id"].StringValue)
			if aws.ToString(m.Body) != want[id] {
				t.Errorf("entry %s: body differs", id)
			}
		}
	})
	// One entry's offload fails: the whole call fails before anything is
	// sent (as AWS's extended clients fail a batch whose S3 write fails),
	// the error names the entry and keeps its cause, and the batch sent
	// again without it goes out whole.
	t.Run("BatchEntryOffloadFails", func(t *testing.T) {
		url := r.queue(t, nil)
		c := ccsqs.New(r.sqs, r.checker(t))
		want := map[string]string{"e0": text(300_000, 40), "e1": text(300_000, 41), "e2": "small"}
		entry := func(id string, attrs map[string]types.MessageAttributeValue) types.SendMessageBatchRequestEntry {
			if attrs == nil {
				attrs = map[string]types.MessageAttributeValue{}
			}
			attrs["id"] = str(id)
			return types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(want[id]), MessageAttributes: attrs}
		}
		bad := entry("e1", map[string]types.MessageAttributeValue{claimcheck.HeaderOffload: str("sometimes")})
		_, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url),
			Entries: []types.SendMessageBatchRequestEntry{entry("e0", nil), bad, entry("e2", nil)}})
		if !errors.Is(err, claimcheck.ErrBadOverride) || !strings.Contains(err.Error(), "e1") {
			t.Fatalf("batch with a bad entry: %v, want ErrBadOverride naming e1", err)
		}
		if out, err := r.sqs.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1}); err != nil || len(out.Messages) != 0 {
			t.Fatalf("after the failed batch the queue holds %d messages (%v), want none", len(out.Messages), err)
		}
		out, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url),
			Entries: []types.SendMessageBatchRequestEntry{entry("e0", nil), entry("e2", nil)}})
		if err != nil || len(out.Successful) != 2 {
			t.Fatalf("the batch without the bad entry: %v, %+v", err, out)
		}
		for _, m := range receiveAll(t, c, url, 2) {
			id := aws.ToString(m.MessageAttributes["id"].StringValue)
			if aws.ToString(m.Body) != want[id] {
				t.Errorf("entry %s: body differs", id)
			}
		}
	})
	// The override attribute is removed by the offload, so it does not
	// count against the 10: a batch entry with 9 attributes that the batch
	// limit forces out (the override is set on it to force it), and a
	// message that sets the override itself beside 9 others, go out with
	// their 9 and ExtendedPayloadSize.
	t.Run("OverrideNotCounted", func(t *testing.T) {
		url := r.queue(t, nil)
		c := ccsqs.New(r.sqs, r.checker(t), ccsqs.WithMaxMessageBytes(262144))
		nine := func(id string) map[string]types.MessageAttributeValue {
			a := map[string]types.MessageAttributeValue{"id": str(id)}
			for i := range 8 {
				a[fmt.Sprintf("a%d", i)] = str("v")
			}
			return a
		}
		want := map[string]string{"e0": text(200_000, 50), "e1": text(200_000, 51), "single": "small, offloaded on request"}
		out, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{
			{Id: aws.String("e0"), MessageBody: aws.String(want["e0"]), MessageAttributes: nine("e0")},
			{Id: aws.String("e1"), MessageBody: aws.String(want["e1"]), MessageAttributes: nine("e1")},
		}})
		if err != nil || len(out.Successful) != 2 {
			t.Fatalf("batch of two entries with 9 attributes each, over the batch limit: %v", err)
		}
		single := nine("single")
		single[claimcheck.HeaderOffload] = str(claimcheck.OffloadAlways)
		if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(want["single"]), MessageAttributes: single}); err != nil {
			t.Fatalf("9 attributes and the override: %v", err)
		}
		raw, err := r.sqs.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 1})
		if err != nil {
			t.Fatal(err)
		}
		// One batch entry is enough to fit the batch; the single message.
		pointers := 0
		for _, m := range raw.Messages {
			if _, ok := m.MessageAttributes[claimcheck.AttrExtendedPayloadSize]; ok {
				pointers++
				if len(m.MessageAttributes) != 10 {
					t.Errorf("pointer sent with %d attributes, want the 9 and ExtendedPayloadSize", len(m.MessageAttributes))
				}
			}
		}
		if len(raw.Messages) != 3 || pointers != 2 {
			t.Errorf("the queue shows %d messages, %d of them pointers; want 3 and 2", len(raw.Messages), pointers)
		}
		time.Sleep(1100 * time.Millisecond)
		got := receiveAll(t, c, url, 3)
		for _, m := range got {
			id := aws.ToString(m.MessageAttributes["id"].StringValue)
			if aws.ToString(m.Body) != want[id] || len(m.MessageAttributes) != 9 {
				t.Errorf("%s: %d bytes with %d attributes, want %d bytes with 9", id, len(aws.ToString(m.Body)), len(m.MessageAttributes), len(want[id]))
			}
		}
	})
	// A batch of 11 is SQS's to refuse, before any stash is written for it.
	t.Run("BatchOfEleven", func(t *testing.T) {
		url := r.queue(t, nil)
		var offloads atomic.Int64
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.WithObserver(observer(func(ev claimcheck.Event) {
			if ev.Op == claimcheck.OpOffload {
				offloads.Add(1)
			}
		}))))
		var entries []types.SendMessageBatchRequestEntry
		for i := range ccsqs.MaxBatchEntries + 1 {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), MessageBody: aws.String("small"),
				MessageAttributes: map[string]types.MessageAttributeValue{claimcheck.HeaderOffload: str(claimcheck.OffloadAlways)}})
		}
		var tooMany *types.TooManyEntriesInBatchRequest
		if _, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); !errors.As(err, &tooMany) {
			t.Fatalf("a batch of 11: %v, want SQS's TooManyEntriesInBatchRequest", err)
		}
		if n := offloads.Load(); n != 0 {
			t.Fatalf("%d stashes written for a batch SQS refuses", n)
		}
	})
	t.Run("BatchNeverOffloaded", func(t *testing.T) {
		url := r.queue(t, nil)
		c := ccsqs.New(r.sqs, r.checker(t))
		var entries []types.SendMessageBatchRequestEntry
		for i := range 6 {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), MessageBody: aws.String(text(200_000, uint64(i))),
				MessageAttributes: map[string]types.MessageAttributeValue{claimcheck.HeaderOffload: str(claimcheck.OffloadNever)}})
		}
		if _, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); !errors.Is(err, ccsqs.ErrTooLarge) {
			t.Fatalf("1.2 MB of entries that may not be offloaded: %v, want ErrTooLarge", err)
		}
	})
	// A checker in mode Never keeps every body in its message, the
	// batch's limit too (as ccnats and ccsarama keep it for their
	// brokers' caps): nothing is stored, and the batch is refused.
	t.Run("BatchModeNever", func(t *testing.T) {
		url := r.queue(t, nil)
		var offloads atomic.Int64
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.WithMode(claimcheck.Never), claimcheck.WithObserver(observer(func(ev claimcheck.Event) {
			if ev.Op == claimcheck.OpOffload {
				offloads.Add(1)
			}
		}))))
		var entries []types.SendMessageBatchRequestEntry
		for i := range 6 {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprintf("e%d", i)), MessageBody: aws.String(text(200_000, uint64(i)))})
		}
		if _, err := c.SendMessageBatch(ctxT(t), &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); !errors.Is(err, ccsqs.ErrTooLarge) {
			t.Fatalf("1.2 MB of entries under mode Never: %v, want ErrTooLarge", err)
		}
		if n := offloads.Load(); n != 0 {
			t.Fatalf("%d stashes written under mode Never", n)
		}
	})
}

type observer func(claimcheck.Event)

func (o observer) Observe(_ context.Context, ev claimcheck.Event) { o(ev) }

// A pointer to an object that is gone is not returned; the checker's
// decision is carried out: Redeliver makes it visible again after the retry
// delay (here at once), Handled deletes it, and so does Discard once the
// receive count reaches DiscardAfter.
func TestReceiveFailure(t *testing.T) {
	r := newRig(t)
	send := func(url string) {
		body := string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: bucket, Key: "never-written"}))
		if _, err := r.sqs.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body),
			MessageAttributes: map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(10)}}); err != nil {
			t.Fatal(err)
		}
	}
	receiveNone := func(c *ccsqs.Client, url string) {
		t.Helper()
		out, err := c.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 0 {
			t.Fatalf("a message whose object is gone was returned: %q", aws.ToString(out.Messages[0].Body))
		}
	}
	inQueue := func(url string) string {
		t.Helper()
		attrs, err := r.sqs.GetQueueAttributes(ctxT(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		return attrs.Attributes["ApproximateNumberOfMessages"] + "+" + attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]
	}

	t.Run("Redeliver", func(t *testing.T) {
		url := r.queue(t, nil)
		send(url)
		errs := make(chan error, 4)
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.WithRetryDelay(0), failures(errs)), ccsqs.WithLogger(quiet))
		for i := range 2 {
			receiveNone(c, url)
			if err := recv(t, errs); !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("receive %d: %v, want stash.ErrNotFound", i, err)
			}
		}
		if n := inQueue(url); n != "1+0" {
			t.Fatalf("queue holds %s messages (visible+in flight), want the one, visible again", n)
		}
	})
	t.Run("Handled", func(t *testing.T) {
		url := r.queue(t, nil)
		send(url)
		var routed []claimcheck.Failure
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
			routed = append(routed, f)
			return nil
		})), ccsqs.WithLogger(quiet))
		receiveNone(c, url)
		if len(routed) != 1 {
			t.Fatalf("%d routed, want 1", len(routed))
		}
		if _, ok := routed[0].Message.(*types.Message); !ok {
			t.Errorf("Failure.Message is %T, want *types.Message", routed[0].Message)
		}
		if n := inQueue(url); n != "0+0" {
			t.Fatalf("queue still holds %s messages after the handler took it", n)
		}
	})
	t.Run("DiscardAfter", func(t *testing.T) {
		url := r.queue(t, nil)
		send(url)
		errs := make(chan error, 4)
		c := ccsqs.New(r.sqs, r.checker(t, claimcheck.WithRetryDelay(0), claimcheck.DiscardAfter(2), failures(errs)), ccsqs.WithLogger(quiet))
		receiveNone(c, url)
		if n := inQueue(url); n != "1+0" {
			t.Fatalf("after the first receive the queue holds %s, want the message back", n)
		}
		receiveNone(c, url)
		if n := inQueue(url); n != "0+0" {
			t.Fatalf("after the second receive the queue holds %s, want it discarded", n)
		}
	})
}

func recv(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported")
		return nil
	}
}

// A checker in claimstash's contract never passes an extended client's
// pointer on as the payload: it is a failure, reported.
func TestPointerNeedsTheContract(t *testing.T) {
	r := newRig(t)
	url := r.queue(t, nil)
	cc, err := claimcheck.New(r.engine(t))
	if err != nil {
		t.Fatal(err)
	}
	var l logs
	c := ccsqs.New(r.sqs, cc, ccsqs.WithLogger(l.logger()))
	body := string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: bucket, Key: "k"}))
	if _, err := r.sqs.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{claimcheck.AttrExtendedPayloadSize: num(1)}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 2})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("received %d messages, %v; want none", len(out.Messages), err)
	}
	if got := l.String(); !strings.Contains(got, "address not allowed") || !strings.Contains(got, "S3 pointer") {
		t.Fatalf("logged %q, want the refusal (claimcheck.ErrNotAllowed)", got)
	}
}
