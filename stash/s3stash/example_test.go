package s3stash_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// An engine over S3 by URL: credentials from the SDK's default chain, the
// namespace ("orders") a bucket. It needs credentials and a bucket, so it is
// not run as a test.
func Example() {
	ctx := context.Background()
	e, err := stash.New(
		stash.WithBackendURL(ctx, "s3://?region=eu-west-1"),
		stash.WithNamespace("orders"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	s, err := e.Create(ctx, "order", []byte(`{"id": 42, "lines": ["…"]}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address) // s3://orders/order.<sha256>
}

// A Store over a client of your own, for a MinIO server: one bucket holds
// every namespace, under a prefix.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		log.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:9000")
		o.UsePathStyle = true
	})
	store, err := s3stash.New(client, s3stash.WithBucket("claimstash"), s3stash.WithPrefix("stash/"), s3stash.WithConcurrency(8))
	if err != nil {
		log.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(store))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
}
