package s3stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// methodsHTTP counts a client's requests by method, and those that carry
// If-None-Match.
type methodsHTTP struct {
	next        s3.HTTPClient
	mu          sync.Mutex
	seen        map[string]int
	conditional int
}

func (c *methodsHTTP) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.seen[r.Method]++
	if r.Header.Get("If-None-Match") != "" {
		c.conditional++
	}
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

// countedEngines is two engines over one store (a fresh prefix of the test
// bucket on MinIO, with opts) whose requests are counted.
func countedEngines(t *testing.T, opts ...s3stash.Option) (counted *methodsHTTP, e, other *stash.Engine) {
	t.Helper()
	srv := server(t)
	counted = &methodsHTTP{seen: map[string]int{}}
	client := s3.New(srv.Client().Options(), func(o *s3.Options) {
		counted.next = o.HTTPClient
		o.HTTPClient = counted
	})
	store, err := s3stash.New(client, append([]s3stash.Option{s3stash.WithBucket(testBucket), s3stash.WithPrefix(freshPrefix()),
		s3stash.WithPartSize(partSize)}, opts...)...)
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
	return counted, engine(), engine()
}

// TestEngineCreateWithoutHead: the engine creates a stash of up to 1 MiB
// with one conditional PutObject and no HeadObject first. Content stored
// already (by another engine) is found by the HEAD after MinIO refuses the
// PutObject, and reads back as it was; content the same engine stored
// lately, and a larger payload, are asked for first, and not sent again.
func TestEngineCreateWithoutHead(t *testing.T) {
	counted, e, other := countedEngines(t)
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

// TestWithoutConditionalWrites: a store opened for a bucket without
// conditional writes sends no If-None-Match, single or multipart, and asks
// with a HEAD before every write, so that content stored already is never
// written over: its expiry (an hour) is kept when another engine creates
// it again with a shorter one. (Up to 1 MiB the HEAD is Put's; beyond, the
// engine asks first too.)
func TestWithoutConditionalWrites(t *testing.T) {
	counted, e, other := countedEngines(t, s3stash.WithoutConditionalWrites())
	ctx := context.Background()
	for _, size := range []int{1 << 10, partSize + 1} {
		data := payload(size, uint64(size)+11)
		s, err := e.Create(ctx, "k", data, stash.TTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if heads, puts := counted.take(); heads < 1 || heads > 2 || puts < 1 {
			t.Errorf("Create of %d new bytes: %d HEAD and %d PUT, want a HEAD (or two) first and then the write", size, heads, puts)
		}
		if _, err := other.Create(ctx, "k", data, stash.TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if heads, puts := counted.take(); heads < 1 || heads > 2 || puts != 0 {
			t.Errorf("Create of %d bytes another engine stored: %d HEAD and %d PUT, want 1 or 2 and 0", size, heads, puts)
		}
		st, err := e.Stat(ctx, s.String())
		if err != nil {
			t.Fatal(err)
		}
		if left := time.Until(st.ExpiresAt); left < 50*time.Minute {
			t.Errorf("%d bytes: the stash expires in %v after a Create with a shorter TTL; want the first hour kept", size, left.Round(time.Second))
		}
		got, err := other.Retrieve(ctx, s.String())
		if err != nil || !bytes.Equal(got.Data, data) {
			t.Fatalf("Retrieve: %v", err)
		}
		counted.take()
	}
	counted.mu.Lock()
	defer counted.mu.Unlock()
	if counted.conditional != 0 {
		t.Errorf("%d requests carried If-None-Match; want none", counted.conditional)
	}
}

// TestConditionalWritesNotImplemented: a store that answers a write's
// If-None-Match with 501 Not Implemented gets an error that names the way
// out, and opened without conditional writes it takes the same write.
func TestConditionalWritesNotImplemented(t *testing.T) {
	var puts atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.Header.Get("If-None-Match") != "":
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`)
		case r.Method == http.MethodPut:
			io.Copy(io.Discard, r.Body)
			puts.Add(1)
			w.Header().Set("ETag", `"e"`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer ts.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ts.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	data := []byte("a payload for a store without conditional writes")
	sum := sha256.Sum256(data)
	attrs := &driver.Attributes{Size: int64(len(data)), StoredSize: int64(len(data)), Digest: hex.EncodeToString(sum[:])}
	put := func(opts ...s3stash.Option) error {
		s, err := s3stash.New(client, append([]s3stash.Option{s3stash.WithBucket("b")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s.Put(context.Background(), "ns", "k."+attrs.Digest, bytes.NewReader(data), int64(len(data)), attrs)
	}
	err := put()
	if err == nil || !strings.Contains(err.Error(), "conditional_writes=false") {
		t.Errorf("Put to a store without conditional writes: %v; want an error naming conditional_writes=false", err)
	}
	if puts.Load() != 0 {
		t.Fatalf("%d unconditional PUTs before the option", puts.Load())
	}
	if err := put(s3stash.WithoutConditionalWrites()); err != nil {
		t.Errorf("Put without conditional writes: %v", err)
	}
	if puts.Load() != 1 {
		t.Errorf("%d PUTs stored, want 1", puts.Load())
	}
}
