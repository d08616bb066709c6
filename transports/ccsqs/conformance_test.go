package ccsqs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// The suite runs over moto's SQS, with claimstash's own contract, stashes
// on MinIO: one queue for the decorated consumer and one for the raw view
// of each topic, every message sent to both (SQS delivers a message to one
// consumer of a queue).
//
// It runs once in each wire contract: claimstash's, and AWS's pointer.
func TestConformance(t *testing.T) {
	r := newRig(t)
	for _, contract := range []struct {
		name string
		k    claimcheck.Contract
	}{{"Claimstash", claimcheck.ContractClaimstash}, {"AWSPointer", claimcheck.ContractAWSPointer}} {
		t.Run(contract.name, func(t *testing.T) {
			claimchecktest.RunConformanceTests(t, func(t *testing.T, c *claimcheck.Checker) claimchecktest.Harness {
				return &harness{r: r, c: ccsqs.New(r.sqs, c, ccsqs.WithLogger(quiet)), queues: map[string][2]string{}}
			}, claimchecktest.Features{
				MaxMessageBytes: ccsqs.DefaultMaxMessageBytes,
				TextBodies:      true,
				NewEngine:       func(t *testing.T) *stash.Engine { return r.engine(t) },
				CheckerOptions:  []claimcheck.Option{claimcheck.WithContract(contract.k)},
			})
		})
	}
}

type harness struct {
	r      *rig
	c      *ccsqs.Client
	mu     sync.Mutex
	queues map[string][2]string // topic -> decorated, raw queue URLs
	wg     sync.WaitGroup
	stops  []context.CancelFunc
}

func (h *harness) topic(ctx context.Context, topic string) ([2]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if q, ok := h.queues[topic]; ok {
		return q, nil
	}
	var q [2]string
	for i, name := range []string{topic, topic + "-raw"} {
		out, err := h.r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{"VisibilityTimeout": "2"}})
		if err != nil {
			return q, err
		}
		q[i] = aws.ToString(out.QueueUrl)
	}
	h.queues[topic] = q
	return q, nil
}

func toSQS(m claimchecktest.Message) (*string, map[string]types.MessageAttributeValue) {
	attrs := map[string]types.MessageAttributeValue{}
	for k, v := range m.Headers {
		attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return aws.String(string(m.Body)), attrs
}

func fromSQS(m types.Message) claimchecktest.Message {
	out := claimchecktest.Message{Body: []byte(aws.ToString(m.Body)), Headers: map[string]string{}}
	for k, v := range m.MessageAttributes {
		out.Headers[k] = aws.ToString(v.StringValue)
	}
	return out
}

type sender interface {
	SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

func (h *harness) publish(ctx context.Context, s sender, topic string, msgs []claimchecktest.Message) error {
	q, err := h.topic(ctx, topic)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		for _, url := range q {
			body, attrs := toSQS(m)
			if _, err := s.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: body, MessageAttributes: attrs}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *harness) Publish(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.publish(ctx, h.c, topic, msgs)
}

func (h *harness) PublishRaw(ctx context.Context, topic string, msgs ...claimchecktest.Message) error {
	return h.publish(ctx, h.r.sqs, topic, msgs)
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
				if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			for _, m := range out.Messages {
				_, _ = h.r.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
				select {
				case ch <- fromSQS(m):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

func (h *harness) Subscribe(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	q, err := h.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	return h.subscribe(ctx, h.c, q[0]), nil
}

func (h *harness) SubscribeRaw(ctx context.Context, topic string) (<-chan claimchecktest.Message, error) {
	q, err := h.topic(ctx, topic)
	if err != nil {
		return nil, err
	}
	return h.subscribe(ctx, h.r.sqs, q[1]), nil
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
