package ccsqs_test

import (
	"context"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// A service on a queue that Java and Python extended clients also use: the
// stashes are objects of the bucket the extended clients are configured
// with, and the one new line wraps the SQS client.
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	store, err := s3stash.Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := stash.New(stash.WithBackend(store), stash.WithNamespace("my-large-payloads"))
	if err != nil {
		log.Fatal(err)
	}
	checker, err := claimcheck.New(engine, claimcheck.WithContract(claimcheck.ContractAWSPointer))
	if err != nil {
		log.Fatal(err)
	}

	client := ccsqs.New(sqs.NewFromConfig(cfg), checker) // was: client := sqs.NewFromConfig(cfg)

	queue := aws.String("https://sqs.eu-west-1.amazonaws.com/123456789012/orders")
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: queue, MessageBody: aws.String(bigJSON())}); err != nil {
		log.Fatal(err)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue, WaitTimeSeconds: 20})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range out.Messages {
		process(*m.Body) // the payload, whoever sent it
		_, _ = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: queue, ReceiptHandle: m.ReceiptHandle})
	}
}

func bigJSON() string { return `{"lines":[]}` }
func process(string)  {}
