package ccsns_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsns"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// A queue subscribed without RawMessageDelivery receives SNS's JSON
// notification, whose Message is the reference and whose MessageAttributes
// carry the contract, while the SQS message itself has no attributes. The
// receiving client must not hand that notification on as a plain message:
// the application would read the reference as the payload. It is a failure
// (claimcheck.ErrMalformed) the checker's policy settles, and the message
// stays on the queue.
func TestNotificationOfReferenceNotDelivered(t *testing.T) {
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS, rawSQS := sns.NewFromConfig(moto.Config()), sqs.NewFromConfig(moto.Config())
	st, err := s3stash.New(minio.Client())
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	for i, contract := range []claimcheck.Contract{claimcheck.ContractClaimstash, claimcheck.ContractAWSPointer} {
		t.Run([]string{"claimstash", "aws"}[i], func(t *testing.T) {
			cc, err := claimcheck.New(e, claimcheck.WithContract(contract), claimcheck.WithRetryDelay(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("notify-%d", i)
			topic, err := rawSNS.CreateTopic(ctxT(t), &sns.CreateTopicInput{Name: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			q, err := rawSQS.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mototest.Region, mototest.Account, name)
			if _, err := rawSNS.Subscribe(ctxT(t), &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
				Endpoint: aws.String(arn)}); err != nil {
				t.Fatal(err)
			}
			payload := strings.Repeat("order line\n", 50_000)
			if _, err := ccsns.New(rawSNS, cc).Publish(ctxT(t), &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(payload)}); err != nil {
				t.Fatal(err)
			}

			logged := &errorLog{}
			sub := ccsqs.New(rawSQS, cc, ccsqs.WithLogger(slog.New(logged)))
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
				out, err := sub.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 1})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range out.Messages {
					t.Fatalf("delivered a %d-byte message, the notification of a reference: %.200s", len(aws.ToString(m.Body)), aws.ToString(m.Body))
				}
			}
			if errs := logged.get(); len(errs) == 0 || !errors.Is(errs[0], claimcheck.ErrMalformed) {
				t.Errorf("logged errors %v, want ErrMalformed", errs)
			}
			// Still on the queue: back once its retry delay is over.
			var back bool
			for deadline := time.Now().Add(10 * time.Second); !back && time.Now().Before(deadline); {
				out, err := rawSQS.ReceiveMessage(ctxT(t), &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 1})
				if err != nil {
					t.Fatal(err)
				}
				back = len(out.Messages) > 0
			}
			if !back {
				t.Error("the notification is gone from the queue")
			}
		})
	}
}

// errorLog is a slog handler keeping the "err" attribute of each record.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errorLog) WithGroup(string) slog.Handler            { return l }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *errorLog) get() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}
