package ccsqs_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/javapeer"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// AWS's own Java extended client (amazon-sqs-java-extended-client-lib 2.x,
// the one the Python client follows) and claimstash share one queue, both
// ways: what Java sends with its defaults (the legacy SQSLargePayloadSize
// attribute beside the current pointer class) and in always-through-S3
// mode Go receives rehydrated; what Go sends Java receives as its payload;
// and the receipt handles Java hands its application settle the messages
// through Client.
func TestJavaExtendedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("the java peer takes a few seconds; skipped with -short")
	}
	r := newRig(t)
	url := r.queue(t, nil)
	env := append(r.moto.Env(), "S3_ENDPOINT="+r.minio.Endpoint, "S3_ACCESS_KEY="+miniotest.AccessKey,
		"S3_SECRET_KEY="+miniotest.SecretKey, "BUCKET="+bucket, "QUEUE_URL="+url)
	c := ccsqs.New(r.sqs, r.checker(t))

	t.Run("JavaToGo", func(t *testing.T) {
		javapeer.Run(t, ctxT(t), env, "sqs-send")
		got := map[string]string{}
		for _, m := range receiveAll(t, c, url, 2) {
			got[aws.ToString(m.MessageAttributes["from"].StringValue)] = aws.ToString(m.Body)
			for _, a := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize} {
				if _, ok := m.MessageAttributes[a]; ok {
					t.Errorf("%s left on a rehydrated message", a)
				}
			}
			_, _ = r.sqs.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
		if got["java-big"] != strings.Repeat("j", 300000) || got["java-small"] != "small via s3 from java" {
			t.Fatalf("got %d bytes and %q", len(got["java-big"]), got["java-small"])
		}
	})
	t.Run("GoToJava", func(t *testing.T) {
		big := text(500_000, 43)
		if _, err := c.SendMessage(ctxT(t), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(big),
			MessageAttributes: map[string]types.MessageAttributeValue{"from": str("go")}}); err != nil {
			t.Fatal(err)
		}
		out := javapeer.Run(t, ctxT(t), env, "sqs-receive", "1")
		var m struct {
			Len    int               `json:"len"`
			SHA256 string            `json:"sha256"`
			Attrs  map[string]string `json:"attrs"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(out), &m); err != nil {
			t.Fatalf("java printed %q: %v", out, err)
		}
		sum := sha256.Sum256([]byte(big))
		if m.Len != len(big) || m.SHA256 != hex.EncodeToString(sum[:]) || m.Attrs["from"] != "go" {
			t.Fatalf("java received %+v, want %d bytes with sha256 %x", m, len(big), sum)
		}
		if _, ok := m.Attrs[claimcheck.AttrExtendedPayloadSize]; ok {
			t.Error("java's client left ExtendedPayloadSize: it did not see an extended message")
		}
	})
	t.Run("ExtendedReceiptHandles", func(t *testing.T) {
		javapeer.Run(t, ctxT(t), env, "sqs-send")
		var handles []string
		sc := bufio.NewScanner(bytes.NewReader(javapeer.Run(t, ctxT(t), env, "sqs-handles", "2")))
		for sc.Scan() {
			var m struct {
				Handle string `json:"handle"`
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.Handle, "-..s3BucketName..-"+bucket+"-..s3BucketName..-") {
				t.Fatalf("java's handle %q does not carry the pointer", m.Handle)
			}
			handles = append(handles, m.Handle)
		}
		if len(handles) != 2 {
			t.Fatalf("java printed %d handles", len(handles))
		}
		if _, err := c.ChangeMessageVisibility(ctxT(t), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
			ReceiptHandle: aws.String(handles[0]), VisibilityTimeout: 60}); err != nil {
			t.Fatalf("change visibility with java's handle: %v", err)
		}
		if _, err := c.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(handles[0])}); err != nil {
			t.Fatalf("delete with java's handle: %v", err)
		}
		if out, err := c.DeleteMessageBatch(ctxT(t), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url),
			Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("h1"), ReceiptHandle: aws.String(handles[1])}}}); err != nil || len(out.Failed) != 0 {
			t.Fatalf("delete in a batch with java's handle: %v, %+v", err, out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			attrs, err := r.sqs.GetQueueAttributes(ctxT(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
				AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
			if err != nil {
				t.Fatal(err)
			}
			n := attrs.Attributes["ApproximateNumberOfMessages"] + "+" + attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]
			if n == "0+0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue holds %s messages (visible+in flight) after the deletes, want none", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
