package ccsns_test

import (
	"context"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsns"
)

// A publisher to a topic whose SQS subscribers read with AWS's extended
// clients (or with package ccsqs): the stashes are objects of the bucket
// those clients know, and the one new line wraps the SNS client.
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

	client := ccsns.New(sns.NewFromConfig(cfg), checker) // was: client := sns.NewFromConfig(cfg)

	topic := aws.String("arn:aws:sns:eu-west-1:123456789012:orders")
	if _, err := client.Publish(ctx, &sns.PublishInput{TopicArn: topic, Message: aws.String(bigJSON())}); err != nil {
		log.Fatal(err)
	}
}

func bigJSON() string { return `{"lines":[]}` }
