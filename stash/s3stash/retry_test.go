package s3stash_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// faultProxy forwards to a MinIO server, as a load balancer would: it
// answers 502 while the server is down, and 503 to the next requests it is
// told to fail.
type faultProxy struct {
	*httptest.Server
	fail atomic.Int32
}

func newFaultProxy(t *testing.T, endpoint string) *faultProxy {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p := &faultProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for n := p.fail.Load(); n > 0; n = p.fail.Load() {
			if p.fail.CompareAndSwap(n, n-1) {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestRetriesAfterOutage stops MinIO long enough for a burst of requests to
// fail and be retried, starts it again, and checks that a transient error
// right after the recovery is still retried by the client Open builds. With
// the SDK's default retryer (measured beside it, as a second opinion that
// the outage was long enough) the same error fails at once: the outage
// emptied its retry quota.
func TestRetriesAfterOutage(t *testing.T) {
	isolateAWSConfig(t)
	ctx := context.Background()
	srv := miniotest.Start(t, "outage")
	proxy := newFaultProxy(t, srv.Endpoint)
	ours, err := s3stash.Open(ctx, s3stash.WithEndpoint(proxy.URL), s3stash.WithRegion(miniotest.Region), s3stash.PathStyle(),
		s3stash.WithMaxAttempts(2), s3stash.WithBucket("outage"))
	if err != nil {
		t.Fatal(err)
	}
	sdkDefault, err := s3stash.New(s3.New(s3.Options{
		Region:           miniotest.Region,
		BaseEndpoint:     aws.String(proxy.URL),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(miniotest.AccessKey, miniotest.SecretKey, ""),
		RetryMaxAttempts: 2,
	}), s3stash.WithBucket("outage"))
	if err != nil {
		t.Fatal(err)
	}
	p := payload(1000, 31)
	key := "k." + hexSHA(p)
	if err := ours.Put(ctx, "ns", key, bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatalf("Put: %v", err)
	}

	// The outage: 60 requests on each client, each retried once, fail.
	srv.Kill()
	var wg sync.WaitGroup
	var unexpected atomic.Int32
	for _, s := range []*s3stash.Store{ours, sdkDefault} {
		for range 60 {
			wg.Go(func() {
				if _, err := s.Stat(ctx, "ns", key); err == nil || errors.Is(err, driver.ErrNotFound) {
					unexpected.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := unexpected.Load(); n > 0 {
		t.Fatalf("%d Stat calls during the outage succeeded or said not found", n)
	}

	srv.Restart(t)
	for name, s := range map[string]*s3stash.Store{"Open": ours, "SDK default": sdkDefault} {
		if _, err := s.Stat(ctx, "ns", key); err != nil {
			t.Fatalf("%s: Stat once the server is back: %v", name, err)
		}
	}
	// One transient error each, right after the recovery.
	proxy.fail.Store(1)
	if _, err := ours.Stat(ctx, "ns", key); err != nil {
		t.Errorf("Stat through Open's client after one transient error: %v, want it retried", err)
	}
	proxy.fail.Store(1)
	_, err = sdkDefault.Stat(ctx, "ns", key)
	if err == nil || !strings.Contains(err.Error(), "quota") {
		t.Errorf("Stat through a client with the SDK's default retryer after one transient error: %v, want its retry quota exceeded (else this test's outage proves nothing)", err)
	}
	if n := proxy.fail.Load(); n != 0 {
		t.Errorf("%d injected errors left unused", n)
	}
}
