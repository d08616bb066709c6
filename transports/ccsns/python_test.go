package ccsns_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// What AWS's Python SNS extended client publishes reaches a raw-delivery
// SQS queue as its pointer, and ccsqs reads it.
func TestPythonSNSExtendedClient(t *testing.T) {
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS, rawSQS := sns.NewFromConfig(moto.Config()), sqs.NewFromConfig(moto.Config())
	topic, err := rawSNS.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String("from-python")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := rawSQS.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String("from-python")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawSNS.Subscribe(ctxT(t), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + mototest.Region + ":" + mototest.Account + ":from-python"),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	env := append(moto.Env(), "S3_ENDPOINT="+minio.Endpoint, "S3_ACCESS_KEY="+miniotest.AccessKey,
		"S3_SECRET_KEY="+miniotest.SecretKey, "BUCKET="+bucket, "TOPIC_ARN="+aws.ToString(topic.TopicArn))
	pypeer.Run(t, ctxT(t), env, "testdata/sns_peer.py")

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
			if _, ok := m.MessageAttributes[claimcheck.AttrExtendedPayloadSize]; ok {
				t.Error("ExtendedPayloadSize left on a rehydrated message")
			}
		}
	}
	if got["python-big"] != strings.Repeat("s", 300000) || got["python-small"] != "small via s3" {
		t.Fatalf("got %d bytes and %q", len(got["python-big"]), got["python-small"])
	}
}
