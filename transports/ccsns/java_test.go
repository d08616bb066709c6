package ccsns_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/claimstash/claimstash/internal/javapeer"
	"github.com/claimstash/claimstash/transports/ccsns"
)

// What AWS's Java SNS extended client (sns-extended-client 2.x) publishes,
// large and through S3, reaches a raw-delivery SQS queue as its pointer,
// and ccsqs reads it; what ccsns publishes there, AWS's Java SQS extended
// client receives as its payload.
func TestJavaSNSExtendedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("the java peer takes a few seconds; skipped with -short")
	}
	p := newPeerTopic(t, "from-java")
	javapeer.Run(t, ctxT(t), p.env, "sns-publish")

	got := p.fromPeer(t)
	if got["java-big"] != strings.Repeat("n", 300000) || got["java-small"] != "small via s3 from java" {
		t.Fatalf("got %d bytes and %q", len(got["java-big"]), got["java-small"])
	}
	big := strings.Repeat("published by ccsns ", 20000)
	pub := ccsns.New(p.sns, checker(t, p.minio))
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: p.topicArn, Message: aws.String(big),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"from": {DataType: aws.String("String"), StringValue: aws.String("go")}}}); err != nil {
		t.Fatal(err)
	}
	out := javapeer.Run(t, ctxT(t), append(p.env, "QUEUE_URL="+aws.ToString(p.queueURL)), "sqs-receive", "1")
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
}
