package s3stash_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// A server that answers a PUT into a missing bucket by cutting the
// connection (as MinIO does when it answers 404 before reading the body)
// still gives a missing-bucket error, not a bare network failure.
func TestPutIntoMissingBucketCutConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer srv.Close()
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		Retryer:      aws.NopRetryer{},
	})
	st, err := s3stash.New(client)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 4096)
	err = st.Put(context.Background(), "no-such-bucket", "x.0000000000000000000000000000000000000000000000000000000000000000",
		bytes.NewReader(data), int64(len(data)), &driver.Attributes{Size: int64(len(data)), StoredSize: int64(len(data))})
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("put into a missing bucket over a cut connection: %v, want not found", err)
	}
}

// A server that refuses a conditional PUT of an existing key by cutting
// the connection (as MinIO does when it answers If-None-Match before
// reading the whole body) gives ErrExists when the object is there, and
// the connection error, not ErrExists or ErrNotFound, when it is not.
func TestPutExistingCutConnection(t *testing.T) {
	for _, exists := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead {
				if !exists && r.URL.Path != "/bucket" {
					w.WriteHeader(http.StatusNotFound)
				}
				return
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}))
		client := s3.New(s3.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(srv.URL),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
			Retryer:      aws.NopRetryer{},
		})
		st, err := s3stash.New(client)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte("x"), 4096)
		err = st.Put(context.Background(), "bucket", "x.0000000000000000000000000000000000000000000000000000000000000000",
			bytes.NewReader(data), int64(len(data)), &driver.Attributes{Size: int64(len(data)), StoredSize: int64(len(data))})
		srv.Close()
		switch {
		case exists && !errors.Is(err, driver.ErrExists):
			t.Errorf("conditional put of an existing key over a cut connection: %v, want ErrExists", err)
		case !exists && (err == nil || errors.Is(err, driver.ErrExists) || errors.Is(err, driver.ErrNotFound)):
			t.Errorf("put over a cut connection, no object there: %v, want the connection error", err)
		}
	}
}
