package s3stash_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// An endpoint that answers the first ranged GET of a 1 KiB object with
// Content-Range "bytes 0-1023/1073741824" and attributes that agree must not
// make Retrieve allocate the 1 GiB it claims before the rest of the object
// fails to arrive: a read's buffers are backed by bytes that arrived.
func TestLyingEndpointSizeBoundsAllocation(t *testing.T) {
	data := make([]byte, 1024)
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	const claim = 1 << 30
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amz-meta-claimstash", fmt.Sprintf(`{"size":%d,"stored_size":%d,"digest":%q}`, claim, claim, digest))
		if r.Header.Get("Range") == "" || r.Header.Get("Range")[:8] != "bytes=0-" {
			w.WriteHeader(http.StatusInternalServerError) // the rest of the object never comes
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(data)-1, claim))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data)
	}))
	defer ts.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ts.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	s, err := s3stash.New(client, s3stash.WithBucket("b"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := e.Retrieve(context.Background(), s3stash.Scheme+"://ns/lying."+digest)
	runtime.ReadMemStats(&after)
	if got != nil || err == nil {
		t.Errorf("Retrieve from a lying endpoint returned data")
	}
	if errors.Is(err, stash.ErrNotFound) {
		t.Errorf("Retrieve: %v; want a read failure, not not-found", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("Retrieve allocated %d MiB for a response of 1 KiB; want at most 32 MiB", n>>20)
	}
}
