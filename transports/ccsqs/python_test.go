package ccsqs_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

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
		got, _ := fromPeer(t, r, c, url, 2)
		if got["python-big"] != strings.Repeat("p", 300000) || got["python-small"] != "small via s3" {
			t.Fatalf("got %d and %q", len(got["python-big"]), got["python-small"])
		}
	})
	// The legacy format (SQSLargePayloadSize and the MessageS3Pointer
	// class), with keys the producer chose under a prefix of its own.
	t.Run("PythonLegacyToGo", func(t *testing.T) {
		pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "send-legacy")
		got, msgs := fromPeer(t, r, c, url, 2)
		for _, m := range msgs {
			from := aws.ToString(m.MessageAttributes["from"].StringValue)
			if k := aws.ToString(m.MessageAttributes["S3Key"].StringValue); k != "custom/prefix/"+from {
				t.Errorf("%s: the producer's S3Key attribute is %q", from, k)
			}
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
		checkPeerReceived(t, "python", pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "receive", "1"), big)
	})
	// The receipt handles the extended client hands its application (the
	// S3 pointer prepended) settle the messages through Client as through
	// the extended client, and the objects are kept.
	t.Run("ExtendedReceiptHandles", func(t *testing.T) {
		pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "send")
		settleWithPeerHandles(t, r, c, url, "python", pypeer.Run(t, ctxT(t), env, "testdata/extended_peer.py", "handles", "2"))
	})
}
