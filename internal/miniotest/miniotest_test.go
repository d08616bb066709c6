package miniotest_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
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

// TestRestartServesAtOnce: when Restart returns, the server serves S3
// requests; the first one, without a retry, succeeds (MinIO answers 503
// while it initialises, after its liveness endpoint already says 200).
func TestRestartServesAtOnce(t *testing.T) {
	srv := miniotest.Start(t, "bucket-a")
	c := s3.New(s3.Options{
		Region:           miniotest.Region,
		BaseEndpoint:     aws.String(srv.Endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(miniotest.AccessKey, miniotest.SecretKey, ""),
		RetryMaxAttempts: 1,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		srv.Kill()
		srv.Restart(t)
		key := aws.String(strconv.Itoa(i))
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket-a"), Key: key, Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("restart %d: first PutObject: %v", i, err)
		}
	}
}

func TestBinary(t *testing.T) {
	t.Setenv("CLAIMSTASH_TOOLS", t.TempDir())
	if path, ok := miniotest.Binary(); ok {
		t.Fatalf("Binary() = %q, true in an empty tools dir", path)
	}
}
