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
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// fromPeer receives n messages a peer sent through c, rehydrated, and
// deletes them: their bodies by their "from" attribute, and the messages.
// No pointer attribute is left on any of them.
func fromPeer(t *testing.T, r *rig, c *ccsqs.Client, url string, n int) (map[string]string, []types.Message) {
	t.Helper()
	got := map[string]string{}
	msgs := receiveAll(t, c, url, n)
	for _, m := range msgs {
		got[aws.ToString(m.MessageAttributes["from"].StringValue)] = aws.ToString(m.Body)
		for _, a := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize} {
			if _, ok := m.MessageAttributes[a]; ok {
				t.Errorf("%s left on a rehydrated message", a)
			}
		}
		_, _ = r.sqs.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
	}
	return got, msgs
}

// checkPeerReceived checks what an extended-client peer (who) printed for
// the one message it received: body, sent by Go with the attribute
// from=go, as its payload, with no pointer attribute left.
func checkPeerReceived(t *testing.T, who string, out []byte, body string) {
	t.Helper()
	var m struct {
		Len    int               `json:"len"`
		SHA256 string            `json:"sha256"`
		Attrs  map[string]string `json:"attrs"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &m); err != nil {
		t.Fatalf("%s printed %q: %v", who, out, err)
	}
	sum := sha256.Sum256([]byte(body))
	if m.Len != len(body) || m.SHA256 != hex.EncodeToString(sum[:]) || m.Attrs["from"] != "go" {
		t.Fatalf("%s received %+v, want %d bytes with sha256 %x", who, m, len(body), sum)
	}
	if _, ok := m.Attrs[claimcheck.AttrExtendedPayloadSize]; ok {
		t.Errorf("%s's client left ExtendedPayloadSize: it did not see an extended message", who)
	}
}

// settleWithPeerHandles reads the two receipt handles an extended-client
// peer (who) printed, each carrying its S3 pointer, and settles their messages
// through c with them: visibility changed and deleted, singly and in a
// batch. The queue is then empty, and the objects are kept.
func settleWithPeerHandles(t *testing.T, r *rig, c *ccsqs.Client, url, who string, out []byte) {
	t.Helper()
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
			t.Fatalf("%s's handle %q does not carry the pointer", who, m.Handle)
		}
		handles = append(handles, m.Handle)
	}
	if len(handles) != 2 {
		t.Fatalf("%s printed %d handles: %q", who, len(handles), out)
	}
	h0, h1 := aws.String(handles[0]), aws.String(handles[1])
	if _, err := c.ChangeMessageVisibility(ctxT(t), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: h0, VisibilityTimeout: 60}); err != nil {
		t.Fatalf("change visibility with %s's handle: %v", who, err)
	}
	if out, err := c.ChangeMessageVisibilityBatch(ctxT(t), &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url),
		Entries: []types.ChangeMessageVisibilityBatchRequestEntry{{Id: aws.String("h1"), ReceiptHandle: h1, VisibilityTimeout: 60}}}); err != nil || len(out.Failed) != 0 {
		t.Fatalf("change visibility in a batch with %s's handle: %v, %+v", who, err, out)
	}
	if _, err := c.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: h0}); err != nil {
		t.Fatalf("delete with %s's handle: %v", who, err)
	}
	if out, err := c.DeleteMessageBatch(ctxT(t), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url),
		Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("h1"), ReceiptHandle: h1}}}); err != nil || len(out.Failed) != 0 {
		t.Fatalf("delete in a batch with %s's handle: %v, %+v", who, err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		attrs, err := r.sqs.GetQueueAttributes(ctxT(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		left := attrs.Attributes["ApproximateNumberOfMessages"] + "+" + attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]
		if left == "0+0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %s messages (visible+in flight) after the deletes, want none", left)
		}
	}
	for _, h := range handles {
		key := strings.SplitN(h, "-..s3Key..-", 3)[1]
		if _, err := r.getObject(t, bucket, key); err != nil {
			t.Errorf("object %s after the delete: %v, want it kept", key, err)
		}
	}
}
