package ccsqs_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// AWS's own Python extended client and claimstash share one queue, both
// ways: what Python sends (a large message, a small one in
// always-through-S3 mode) Go receives rehydrated, and what Go sends Python
// receives as its payload.
func TestPythonExtendedClient(t *testing.T) {
	r := newRig(t)
	url := r.queue(t, nil)
	env := append(r.moto.Env(), "S3_ENDPOINT="+r.minio.Endpoint, "S3_ACCESS_KEY="+miniotest.AccessKey,
		"S3_SECRET_KEY="+miniotest.SecretKey, "BUCKET="+bucket, "QUEUE_URL="+url)
	c := ccsqs.New(r.sqs, r.checker(t))

	t.Run("PythonToGo", func(t *testing.T) {
		pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "send")
		got := map[string]string{}
		for _, m := range receiveAll(t, c, url, 2) {
			got[aws.ToString(m.MessageAttributes["from"].StringValue)] = aws.ToString(m.Body)
			if _, ok := m.MessageAttributes[claimcheck.AttrExtendedPayloadSize]; ok {
				t.Error("ExtendedPayloadSize left on a rehydrated message")
			}
			_, _ = r.sqs.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
		if got["python-big"] != strings.Repeat("p", 300000) || got["python-small"] != "small via s3" {
			t.Fatalf("got %d and %q", len(got["python-big"]), got["python-small"])
		}
	})
	// The legacy format (SQSLargePayloadSize and the MessageS3Pointer
	// class), with keys the producer chose under a prefix of its own.
	t.Run("PythonLegacyToGo", func(t *testing.T) {
		pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "send-legacy")
		got := map[string]string{}
		for _, m := range receiveAll(t, c, url, 2) {
			from := aws.ToString(m.MessageAttributes["from"].StringValue)
			got[from] = aws.ToString(m.Body)
			if _, ok := m.MessageAttributes[claimcheck.AttrLegacyPayloadSize]; ok {
				t.Error("SQSLargePayloadSize left on a rehydrated message")
			}
			if k := aws.ToString(m.MessageAttributes["S3Key"].StringValue); k != "custom/prefix/"+from {
				t.Errorf("%s: the producer's S3Key attribute is %q", from, k)
			}
			_, _ = r.sqs.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
		if got["legacy-big"] != strings.Repeat("l", 300000) || got["legacy-small"] != "legacy small" {
			t.Fatalf("got %d bytes and %q", len(got["legacy-big"]), got["legacy-small"])
		}
	})
	t.Run("GoToPython", func(t *testing.T) {
		big := text(500_000, 42)
		if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(big),
			MessageAttributes: map[string]types.MessageAttributeValue{"from": str("go")}}); err != nil {
			t.Fatal(err)
		}
		out := pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "receive", "1")
		sc := bufio.NewScanner(bytes.NewReader(out))
		if !sc.Scan() {
			t.Fatalf("python printed nothing: %q", out)
		}
		var m struct {
			Len    int               `json:"len"`
			SHA256 string            `json:"sha256"`
			Attrs  map[string]string `json:"attrs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(big))
		if m.Len != len(big) || m.SHA256 != hex.EncodeToString(sum[:]) || m.Attrs["from"] != "go" {
			t.Fatalf("python received %+v, want %d bytes with sha256 %x", m, len(big), sum)
		}
		if _, ok := m.Attrs[claimcheck.AttrExtendedPayloadSize]; ok {
			t.Error("python's client left ExtendedPayloadSize: it did not see an extended message")
		}
	})
	// The receipt handles the extended client hands its application (the
	// S3 pointer prepended) settle the messages through Client as through
	// the extended client, and the objects are kept.
	t.Run("ExtendedReceiptHandles", func(t *testing.T) {
		pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "send")
		out := pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "handles", "2")
		var handles []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var m struct {
				Handle string `json:"handle"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.Handle, "-..s3BucketName..-"+bucket+"-..s3BucketName..-") {
				t.Fatalf("python's handle %q does not carry the pointer", m.Handle)
			}
			handles = append(handles, m.Handle)
		}
		if len(handles) != 2 {
			t.Fatalf("python printed %d handles: %q", len(handles), out)
		}
		h0, h1 := aws.String(handles[0]), aws.String(handles[1])
		if _, err := c.ChangeMessageVisibility(ctxT(t), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: h0, VisibilityTimeout: 60}); err != nil {
			t.Fatalf("change visibility with python's handle: %v", err)
		}
		if out, err := c.ChangeMessageVisibilityBatch(ctxT(t), &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url),
			Entries: []types.ChangeMessageVisibilityBatchRequestEntry{{Id: aws.String("h1"), ReceiptHandle: h1, VisibilityTimeout: 60}}}); err != nil || len(out.Failed) != 0 {
			t.Fatalf("change visibility in a batch with python's handle: %v, %+v", err, out)
		}
		if _, err := c.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: h0}); err != nil {
			t.Fatalf("delete with python's handle: %v", err)
		}
		if out, err := c.DeleteMessageBatch(ctxT(t), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url),
			Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("h1"), ReceiptHandle: h1}}}); err != nil || len(out.Failed) != 0 {
			t.Fatalf("delete in a batch with python's handle: %v, %+v", err, out)
		}
		attrs, err := r.sqs.GetQueueAttributes(ctxT(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		if n := attrs.Attributes["ApproximateNumberOfMessages"] + "+" + attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]; n != "0+0" {
			t.Fatalf("queue holds %s messages (visible+in flight) after the deletes, want none", n)
		}
		for _, h := range handles {
			key := strings.SplitN(h, "-..s3Key..-", 3)[1]
			if _, err := r.getObject(t, bucket, key); err != nil {
				t.Errorf("object %s after the delete: %v, want it kept", key, err)
			}
		}
	})
}
