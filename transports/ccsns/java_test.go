package ccsns_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/javapeer"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/transports/ccsns"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// What AWS's Java SNS extended client (sns-extended-client 2.x) publishes,
// large and through S3, reaches a raw-delivery SQS queue as its pointer,
// and ccsqs reads it; what ccsns publishes there, AWS's Java SQS extended
// client receives as its payload.
func TestJavaSNSExtendedClient(t *testing.T) {
	if testing.Short() {
		t.Skip("the java peer takes a few seconds; skipped with -short")
	}
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS, rawSQS := sns.NewFromConfig(moto.Config()), sqs.NewFromConfig(moto.Config())
	topic, err := rawSNS.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String("from-java")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := rawSQS.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String("from-java")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawSNS.Subscribe(ctxT(t), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + mototest.Region + ":" + mototest.Account + ":from-java"),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	env := append(moto.Env(), "S3_ENDPOINT="+minio.Endpoint, "S3_ACCESS_KEY="+miniotest.AccessKey,
		"S3_SECRET_KEY="+miniotest.SecretKey, "BUCKET="+bucket, "TOPIC_ARN="+aws.ToString(topic.TopicArn))
	javapeer.Run(t, ctxT(t), env, "sns-publish")

	sub := ccsqs.New(rawSQS, checker(t, minio))
	got := map[string]string{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		out, err := sub.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.MessageAttributes["from"].StringValue)] = aws.ToString(m.Body)
			for _, a := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize} {
				if _, ok := m.MessageAttributes[a]; ok {
					t.Errorf("%s left on a rehydrated message", a)
				}
			}
			if _, err := sub.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got["java-big"] != strings.Repeat("n", 300000) || got["java-small"] != "small via s3 from java" {
		t.Fatalf("got %d bytes and %q", len(got["java-big"]), got["java-small"])
	}
	big := strings.Repeat("published by ccsns ", 20000)
	pub := ccsns.New(rawSNS, checker(t, minio))
	if _, err := pub.Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(big),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{"from": {DataType: aws.String("String"), StringValue: aws.String("go")}}}); err != nil {
		t.Fatal(err)
	}
	out := javapeer.Run(t, ctxT(t), append(env, "QUEUE_URL="+aws.ToString(q.QueueUrl)), "sqs-receive", "1")
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
