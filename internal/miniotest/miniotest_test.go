package miniotest_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/internal/miniotest"
)

func TestStartPutGetRestart(t *testing.T) {
	srv := miniotest.Start(t, "bucket-a")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := srv.Client()
	want := []byte("hello minio")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("k"), Body: bytes.NewReader(want)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}

	srv.Restart(t) // same address, same data
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket-a"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject after restart: %v\n%s", err, srv.Logs())
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetObject after restart = %q, %v; want %q", got, err, want)
	}

	srv.Kill()
	short, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if _, err := c.HeadBucket(short, &s3.HeadBucketInput{Bucket: aws.String("bucket-a")}); err == nil {
		t.Fatal("HeadBucket succeeded against a stopped server")
	}
	srv.Stop()
	srv.Stop() // idempotent
}

func TestBinary(t *testing.T) {
	t.Setenv("CLAIMSTASH_TOOLS", t.TempDir())
	if path, ok := miniotest.Binary(); ok {
		t.Fatalf("Binary() = %q, true in an empty tools dir", path)
	}
}
