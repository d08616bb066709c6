package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/internal/miniotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// TestRunKfake runs the example as a fresh machine would: no broker given,
// so against an in-process kfake.
func TestRunKfake(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("STASH_URL", "")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-size", "3145728"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"in-process kfake", "sent 3145728 bytes", "received 3145728 bytes", `content-type "application/octet-stream"`, "offloaded 1, rehydrated 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunMinIO runs the example with its stashes in MinIO, as after
// `make up` (there with the compose credentials and bucket), and checks the
// stash landed in the bucket.
func TestRunMinIO(t *testing.T) {
	ms := miniotest.Start(t, "claimstash")
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	u := "s3://?endpoint=" + url.QueryEscape(ms.Endpoint) + "&path_style=true&region=" + miniotest.Region + "&bucket=claimstash"
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-size", "3145728", "-stash", u}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"stash: s3://", "received 3145728 bytes", "offloaded 1, rehydrated 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := ms.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("claimstash")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 {
		t.Fatalf("%d objects in the bucket, want the one stash", len(list.Contents))
	}
}
