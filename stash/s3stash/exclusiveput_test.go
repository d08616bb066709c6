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

// take returns the HEADs and PUTs counted since the last take.
func (c *methodsHTTP) take() (heads, puts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	heads, puts = c.seen[http.MethodHead], c.seen[http.MethodPut]
	clear(c.seen)
	return heads, puts
}

// TestEngineCreateWithoutHead: the engine creates a stash of up to 1 MiB
// with one conditional PutObject and no HeadObject first. Content stored
// already (by another engine) is found by the HEAD after MinIO refuses the
// PutObject, and reads back as it was; content the same engine stored
// lately, and a larger payload, are asked for first, and not sent again.
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
	engine := func() *stash.Engine {
		e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	e, other := engine(), engine()
	ctx := context.Background()
	expect := func(what string, wantHeads, wantPuts int) {
		t.Helper()
		if heads, puts := counted.take(); heads != wantHeads || puts != wantPuts {
			t.Errorf("%s: %d HEAD and %d PUT, want %d and %d", what, heads, puts, wantHeads, wantPuts)
		}
	}
	for _, size := range []int{1 << 10, 1 << 20} {
		data := payload(size, uint64(size))
		// No expiry, so the second Create has none to extend.
		s, err := e.Create(ctx, "k", data, stash.NoExpiry())
		if err != nil {
			t.Fatal(err)
		}
		expect(fmt.Sprintf("Create of %d new bytes", size), 0, 1)
		s2, err := e.Create(ctx, "k", data, stash.NoExpiry())
		if err != nil {
			t.Fatal(err)
		}
		if s2.String() != s.String() {
			t.Fatalf("second Create: %s, want %s", s2, s)
		}
		expect(fmt.Sprintf("Create of %d bytes the engine stored", size), 1, 0)
		if _, err := other.Create(ctx, "k", data, stash.NoExpiry()); err != nil {
			t.Fatal(err)
		}
		// The PutObject refused, then the engine's HEAD. MinIO may cut
		// off a refused body instead of answering: the SDK may then
		// send it again, and the store asks with a HEAD of its own.
		if heads, puts := counted.take(); heads < 1 || heads > 2 || puts < 1 || puts > 3 {
			t.Errorf("Create of %d bytes another engine stored: %d HEAD and %d PUT, want 1 and 1 (or, cut off, up to 2 and 3)", size, heads, puts)
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
	expect("Create of new bytes over 1 MiB", 1, 1)
	if _, err := e.Create(ctx, "big", big, stash.NoExpiry()); err != nil {
		t.Fatal(err)
	}
	expect("Create of stored bytes over 1 MiB", 1, 0)
}
