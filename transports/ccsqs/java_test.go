package ccsqs_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

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
		got, _ := fromPeer(t, r, c, url, 2)
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
		checkPeerReceived(t, "java", javapeer.Run(t, ctxT(t), env, "sqs-receive", "1"), big)
	})
	t.Run("ExtendedReceiptHandles", func(t *testing.T) {
		javapeer.Run(t, ctxT(t), env, "sqs-send")
		settleWithPeerHandles(t, r, c, url, "java", javapeer.Run(t, ctxT(t), env, "sqs-handles", "2"))
	})
}
