package s3stash_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// methodsHTTP counts a client's requests by method.
type methodsHTTP struct {
	next s3.HTTPClient
	mu   sync.Mutex
	seen map[string]int
}

func (c *methodsHTTP) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.seen[r.Method]++
	c.mu.Unlock()
	return c.next.Do(r)
}

func (c *methodsHTTP) take() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := fmt.Sprintf("%d HEAD, %d PUT", c.seen[http.MethodHead], c.seen[http.MethodPut])
	clear(c.seen)
	return out
}

// TestEngineCreateWithoutHead: the engine creates a stash of up to 1 MiB
// with one conditional PutObject and no HeadObject first. Content stored
// already is found by the HEAD after MinIO refuses the PutObject, and reads
// back as it was; a larger payload is asked for first, and not sent again.
func TestEngineCreateWithoutHead(t *testing.T) {
	srv := server(t)
	counted := &methodsHTTP{seen: map[string]int{}}
	client := s3.New(srv.Client().Options(), func(o *s3.Options) {
		counted.next = o.HTTPClient
		o.HTTPClient = counted
	})
	store, err := s3stash.NewConfig(client, s3stash.Config{Bucket: testBucket, Prefix: freshPrefix(), PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	expect := func(what, want string) {
		t.Helper()
		if got := counted.take(); got != want {
			t.Errorf("%s: %s, want %s", what, got, want)
		}
	}
	for _, size := range []int{1 << 10, 1 << 20} {
		data := payload(size, uint64(size))
		// No expiry, so the second Create has none to extend.
		s, err := e.Create(ctx, "k", data, stash.NoExpiry())
		if err != nil {
			t.Fatal(err)
		}
		expect(fmt.Sprintf("Create of %d new bytes", size), "0 HEAD, 1 PUT")
		s2, err := e.Create(ctx, "k", data, stash.NoExpiry())
		if err != nil {
			t.Fatal(err)
		}
		if s2.String() != s.String() {
			t.Fatalf("second Create: %s, want %s", s2, s)
		}
		// The PutObject refused (or cut off by MinIO, which the store
		// then asks about with a HEAD of its own), then the engine's HEAD.
		if got := counted.take(); got != "1 HEAD, 1 PUT" && got != "2 HEAD, 1 PUT" {
			t.Errorf("Create of %d stored bytes: %s, want 1 HEAD, 1 PUT", size, got)
		}
		got, err := e.Retrieve(ctx, s.String())
		if err != nil || !bytes.Equal(got.Data, data) {
			t.Fatalf("Retrieve: %v", err)
		}
		counted.take()
	}
	big := payload(1<<20+1, 7)
	if _, err := e.Create(ctx, "big", big, stash.NoExpiry()); err != nil {
		t.Fatal(err)
	}
	expect("Create of new bytes over 1 MiB", "1 HEAD, 1 PUT")
	if _, err := e.Create(ctx, "big", big, stash.NoExpiry()); err != nil {
		t.Fatal(err)
	}
	expect("Create of stored bytes over 1 MiB", "1 HEAD, 0 PUT")
}
