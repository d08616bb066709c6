package ccsns_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// peerTopic is what the extended-client peers publish to: a topic on moto
// with a raw-delivery SQS queue subscribed, the MinIO bucket the payloads
// go to, and the environment the peers read all of it from.
type peerTopic struct {
	minio    *miniotest.Server
	sns      *sns.Client // raw
	sqs      *sqs.Client // raw
	topicArn *string
	queueURL *string
	env      []string
}

// fromPeer receives the two messages a peer published, rehydrated by
// ccsqs, and deletes them: their bodies by their "from" attribute. No
// pointer attribute is left on them.
func (p *peerTopic) fromPeer(t *testing.T) map[string]string {
	t.Helper()
	sub := ccsqs.New(p.sqs, checker(t, p.minio))
	got := map[string]string{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		out, err := sub.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: p.queueURL, MaxNumberOfMessages: 10,
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
			if _, err := sub.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: p.queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

func newPeerTopic(t *testing.T, name string) *peerTopic {
	t.Helper()
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	p := &peerTopic{minio: minio, sns: sns.NewFromConfig(moto.Config()), sqs: sqs.NewFromConfig(moto.Config())}
	topic, err := p.sns.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.sqs.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.sns.Subscribe(ctxT(t), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + mototest.Region + ":" + mototest.Account + ":" + name),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	p.topicArn, p.queueURL = topic.TopicArn, q.QueueUrl
	p.env = append(moto.Env(), "S3_ENDPOINT="+minio.Endpoint, "S3_ACCESS_KEY="+miniotest.AccessKey,
		"S3_SECRET_KEY="+miniotest.SecretKey, "BUCKET="+bucket, "TOPIC_ARN="+aws.ToString(topic.TopicArn))
	return p
}
