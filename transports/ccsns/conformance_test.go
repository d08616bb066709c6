package ccsns_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsns"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// The suite runs with ccsns publishing to a topic that fans out, with raw
// delivery, to two SQS queues: one read through ccsqs, one raw. Both wire
// contracts; stashes on MinIO; SNS's 256 KiB limit.
func TestConformance(t *testing.T) {
	moto, minio := mototest.Start(t), miniotest.Start(t, bucket)
	rawSNS, rawSQS := sns.NewFromConfig(moto.Config()), sqs.NewFromConfig(moto.Config())
	newEngine := func(t *testing.T) *stash.Engine {
		st, err := s3stash.New(minio.Client())
		if err != nil {
			t.Fatal(err)
		}
		e, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	for _, contract := range []struct {
		name string
		k    claimcheck.Contract
	}{{"Claimstash", claimcheck.ContractClaimstash}, {"AWSPointer", claimcheck.ContractAWSPointer}} {
		t.Run(contract.name, func(t *testing.T) {
			claimchecktest.RunConformanceTests(t, func(t *testing.T, c *claimcheck.Checker) claimchecktest.Harness {
				return &harness{sns: rawSNS, sqs: rawSQS, pub: ccsns.New(rawSNS, c),
					sub:    ccsqs.New(rawSQS, c, ccsqs.WithLogger(slog.New(slog.DiscardHandler))),
					topics: map[string]topicQueues{}}
			}, claimchecktest.Features{
				MaxMessageBytes: ccsns.DefaultMaxMessageBytes,
				TextBodies:      true,
				NewEngine:       newEngine,
				CheckerOptions:  []claimcheck.Option{claimcheck.WithContract(contract.k)},
			})
		})
	}
}

type topicQueues struct {
	arn        string
	queue, raw string
}

type harness struct {
	sns    *sns.Client
	sqs    *sqs.Client
	pub    *ccsns.Client
	sub    *ccsqs.Client
	mu     sync.Mutex
	topics map[string]topicQueues
	wg     sync.WaitGroup
	stops  []context.CancelFunc
}

func (h *harness) topic(ctx context.Context, name string) (topicQueues, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if tq, ok := h.topics[name]; ok {
		return tq, nil
	}
	out, err := h.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return topicQueues{}, err
	}
	tq := topicQueues{arn: aws.ToString(out.TopicArn)}
	// The decorated queue has the topic's name, so failures name it.
	for i, q := range []*string{&tq.queue, &tq.raw} {
		qname := name
		if i == 1 {
			qname += "-raw"
		}
		qo, err := h.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(qname), Attributes: map[string]string{"VisibilityTimeout": "2"}})
		if err != nil {
			return topicQueues{}, err
		}
		*q = aws.ToString(qo.QueueUrl)
		arn := fmt.Sprintf("arn:aws:sqs:%s:%s:%s", mototest.Region, mototest.Account, qname)
		if _, err := h.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: out.TopicArn, Protocol: aws.String("sqs"),
			Endpoint: aws.String(arn), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
			return topicQueues{}, err
		}
	}
	h.topics[name] = tq
	return tq, nil
}

type publisher interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

func (h *harness) publish(ctx context.Context, p publisher, topic string, msgs []claimchecktest.Message) error {
	tq, err := h.topic(ctx, topic)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		attrs := map[string]snstypes.MessageAttributeValue{}
		for k, v := range m.Headers {
			attrs[k] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
		body := string(m.Body)
		if body == "" {
			// SNS refuses an empty message; a single space stands in, and
			// is mapped back on receipt.
			body = " "
		}
		if _, err := p.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(tq.arn), Message: aws.String(body), MessageAttributes: attrs}); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.publish(ctx, h.pub, topic, msgs)
}

func (h *harness) PublishRaw(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.publish(ctx, h.sns, topic, msgs)
}

type receiver interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
}

func (h *harness) subscribe(ctx context.Context, r receiver, url string) <-chan claimchecktest.Message {
	ch := make(chan claimchecktest.Message, 64)
	ctx, cancel := context.WithCancel(ctx)
	h.mu.Lock()
	h.stops = append(h.stops, cancel)
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for ctx.Err() == nil {
			out, err := r.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
				WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for _, m := range out.Messages {
				_, _ = h.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
				msg := claimchecktest.Message{Body: []byte(aws.ToString(m.Body)), Headers: map[string]string{}}
				if string(msg.Body) == " " {
					msg.Body = []byte{}
				}
				for k, v := range m.MessageAttributes {
					msg.Headers[k] = aws.ToString(v.StringValue)
				}
				select {
				case ch <- msg:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

func (h *harness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	tq, err := h.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	return h.subscribe(ctx, h.sub, tq.queue), nil
}

func (h *harness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	tq, err := h.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	return h.subscribe(ctx, h.sqs, tq.raw), nil
}

func (h *harness) Close() error {
	h.mu.Lock()
	stops := h.stops
	h.stops = nil
	h.mu.Unlock()
	for _, s := range stops {
		s()
	}
	h.wg.Wait()
	return nil
}
