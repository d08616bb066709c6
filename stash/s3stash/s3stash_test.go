package s3stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.StopShared()
	os.Exit(code)
}

// testBucket holds every test's objects, under a prefix of its own.
const testBucket = "claimstash-test"

// partSize is small so that a few MiB exercise multipart and ranged reads.
const partSize = s3stash.MinPartSize

var prefixes atomic.Int64

func freshPrefix() string { return fmt.Sprintf("t%d/", prefixes.Add(1)) }

// server returns the shared MinIO with the test bucket created.
func server(tb testing.TB) *miniotest.Server {
	tb.Helper()
	srv := miniotest.Shared(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := srv.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(testBucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		tb.Fatalf("creating bucket: %v", err)
	}
	return srv
}

// harness serves the conformance suite: every driver is a fresh prefix of
// one bucket, namespaces being the first segment of their keys (the suite's
// namespaces, "ns" among them, are not all valid bucket names).
type harness struct {
	srv           *miniotest.Server
	raw           *s3.Client
	stores        []*s3stash.Store
	unconditional bool // the stores are opened WithoutConditionalWrites
}

func newHarness(_ context.Context, tb testing.TB) (stashtest.Harness, error) {
	srv := server(tb)
	return &harness{srv: srv, raw: srv.Client()}, nil
}

func (h *harness) MakeDriver(context.Context) (driver.Driver, error) {
	s, err := s3stash.NewConfig(h.raw, s3stash.Config{Bucket: testBucket, Prefix: freshPrefix(), PartSize: partSize, NoConditionalWrites: h.unconditional})
	if err == nil {
		h.stores = append(h.stores, s)
	}
	return s, err
}

// Corrupt downloads the object, flips a byte of it and uploads it again
// with the same metadata, bypassing the store (no If-None-Match).
func (h *harness) Corrupt(ctx context.Context, ns, key string) error {
	if len(h.stores) == 0 {
		return errors.New("no driver made")
	}
	bucket, k := h.stores[len(h.stores)-1].Locate(ns, key)
	return corrupt(ctx, h.raw, bucket, k)
}

func corrupt(ctx context.Context, c *s3.Client, bucket, k string) error {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
	if err != nil {
		return err
	}
	data, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return errors.New("empty object")
	}
	data[len(data)/2] ^= 0x01
	_, err = c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(data),
		Metadata: out.Metadata, ContentType: out.ContentType,
	})
	return err
}

func (h *harness) Close() {}

func TestConformance(t *testing.T) {
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		return newHarness(ctx, t)
	})
}

// TestConformanceWithoutConditionalWrites: the store opened for a bucket
// without conditional writes keeps the driver contract too (a Put of an
// existing key is ErrExists and replaces nothing).
func TestConformanceWithoutConditionalWrites(t *testing.T) {
	stashtest.RunConformanceTests(t, func(ctx context.Context, t *testing.T) (stashtest.Harness, error) {
		h, err := newHarness(ctx, t)
		if err == nil {
			h.(*harness).unconditional = true
		}
		return h, err
	})
}

// ---- focused tests ----

func newStore(t testing.TB, o s3stash.Config) (*s3stash.Store, *miniotest.Server) {
	t.Helper()
	srv := server(t)
	if o.Bucket == "" && !o.CreateBuckets {
		o.Bucket = testBucket
	}
	if o.Prefix == "" {
		o.Prefix = freshPrefix()
	}
	if o.PartSize == 0 {
		o.PartSize = partSize
	}
	s, err := s3stash.NewConfig(srv.Client(), o)
	if err != nil {
		t.Fatalf("s3stash.New: %v", err)
	}
	return s, srv
}

func payload(n int, seed uint64) []byte { return stashtest.RandomPayload(n, seed) }

func hexSHA(p []byte) string { s := sha256.Sum256(p); return hex.EncodeToString(s[:]) }

func attrsFor(p []byte) *driver.Attributes {
	return &driver.Attributes{Size: int64(len(p)), StoredSize: int64(len(p)), Digest: hexSHA(p), Created: time.Now().UTC()}
}

func get(t *testing.T, d driver.Driver, ns, key string) ([]byte, *driver.Attributes) {
	t.Helper()
	rc, a, err := d.Get(context.Background(), ns, key)
	if err != nil {
		t.Fatalf("Get %s/%s: %v", ns, key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s/%s: %v", ns, key, err)
	}
	return got, a
}

// TestLargeObjects puts and gets objects around the part size: single
// PutObject, multipart with a short last part, exact multiples; and checks
// that S3 stored a SHA-256 checksum it verified.
func TestLargeObjects(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{Concurrency: 3})
	ctx := context.Background()
	// A bytes.Reader is sent in place; a plain reader is read part by part.
	readers := map[string]func([]byte) io.Reader{
		"at":     func(p []byte) io.Reader { return bytes.NewReader(p) },
		"stream": func(p []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(p)} },
	}
	for i, n := range []int{0, 1, partSize - 1, partSize, partSize + 1, 3 * partSize, 4*partSize + 12345} {
		for kind, reader := range readers {
			t.Run(fmt.Sprintf("%s-%d", kind, n), func(t *testing.T) {
				p := payload(n, uint64(i))
				key := kind + "." + hexSHA(p)
				if err := s.Put(ctx, "ns", key, reader(p), int64(n), attrsFor(p)); err != nil {
					t.Fatalf("Put: %v", err)
				}
				got, a := get(t, s, "ns", key)
				if !bytes.Equal(got, p) {
					t.Fatalf("Get returned %d bytes (sha %.12s), want %d (sha %.12s)", len(got), hexSHA(got), n, hexSHA(p))
				}
				if a.Size != int64(n) || a.Digest != hexSHA(p) {
					t.Errorf("attributes %+v", a)
				}
				bucket, k := s.Locate("ns", key)
				head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil {
					t.Fatalf("HeadObject: %v", err)
				}
				if n <= partSize {
					want := sha256.Sum256(p)
					if sum := aws.ToString(head.ChecksumSHA256); sum != base64.StdEncoding.EncodeToString(want[:]) {
						t.Errorf("stored SHA-256 checksum %q, want the payload's", sum)
					}
				} else if sum, want := aws.ToString(head.ChecksumCRC32C), compositeCRC32C(p, partSize); sum != want {
					t.Errorf("multipart object stored with CRC32C checksum %q, want %q (the parts' checksums, which S3 verified)", sum, want)
				}
			})
		}
	}
}

// compositeCRC32C is S3's COMPOSITE checksum of a multipart object of
// parts of partSize: the CRC32C of the parts' CRC32Cs, then "-" and the
// number of parts.
func compositeCRC32C(p []byte, partSize int) string {
	tab := crc32.MakeTable(crc32.Castagnoli)
	var sums []byte
	n := 0
	for off := 0; off < len(p); off += partSize {
		sums = binary.BigEndian.AppendUint32(sums, crc32.Checksum(p[off:min(off+partSize, len(p))], tab))
		n++
	}
	all := binary.BigEndian.AppendUint32(nil, crc32.Checksum(sums, tab))
	return fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(all), n)
}

// flaky is a payload whose bytes change after they have been read once, as
// a bad buffer or NIC would change them between hashing and sending.
type flaky struct {
	*bytes.Reader
	data  []byte
	reads int64
}

func (f *flaky) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.Reader.ReadAt(p, off)
	if f.reads += int64(n); f.reads == min(int64(len(f.data)), partSize) {
		f.data[0] ^= 0x01 // after hashing the first part, before sending it
	}
	return n, err
}

// TestChecksumVerified checks that S3 itself refuses bytes that differ from
// the SHA-256 the store computed, on both upload paths that hash the body:
// one PutObject of a compressed payload (stored bytes other than the
// payload, so the digest cannot serve) and a multipart upload.
func TestChecksumVerified(t *testing.T) {
	s, _ := newStore(t, s3stash.Config{Concurrency: 1})
	ctx := context.Background()
	for _, n := range []int{1000, 2*partSize + 1} {
		p := payload(n, 11)
		key := fmt.Sprintf("flaky%d.%s", n, hexSHA(p))
		data := bytes.Clone(p)
		attrs := attrsFor(p)
		if n <= partSize {
			attrs.Encoding = driver.EncodingZstd
		}
		err := s.Put(ctx, "ns", key, &flaky{Reader: bytes.NewReader(data), data: data}, int64(n), attrs)
		if err == nil {
			t.Fatalf("Put of %d bytes changed after hashing succeeded", n)
		}
		t.Logf("refused as expected: %v", err)
		if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("Stat after a refused Put: got %v, want ErrNotFound", err)
		}
	}
}

// TestPutDigestChecked checks that a payload stored as given in one
// PutObject, which the store does not hash again, is checked by S3 against
// its digest: bytes that do not match it are ErrIntegrity, and nothing is
// stored, from a seekable reader and from a stream.
func TestPutDigestChecked(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	ctx := context.Background()
	readers := map[string]func([]byte) io.Reader{
		"at":     func(p []byte) io.Reader { return bytes.NewReader(p) },
		"stream": func(p []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(p)} },
	}
	for kind, reader := range readers {
		for _, n := range []int{1, 1000, partSize} {
			p := payload(n, 21)
			key := fmt.Sprintf("lying-%s-%d.%s", kind, n, hexSHA(p))
			other := bytes.Clone(p)
			other[n/2] ^= 0x80
			err := s.Put(ctx, "ns", key, reader(other), int64(n), attrsFor(p))
			if !errors.Is(err, driver.ErrIntegrity) || !strings.Contains(err.Error(), "s3stash: put: the payload does not match its digest") {
				t.Fatalf("%s Put of %d bytes that do not match their digest: got %v, want ErrIntegrity", kind, n, err)
			}
			if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, driver.ErrNotFound) {
				t.Errorf("Stat after a refused Put: got %v, want ErrNotFound", err)
			}
			// The true bytes go through, and S3 holds the digest as the
			// object's SHA-256 checksum.
			if err := s.Put(ctx, "ns", key, reader(p), int64(n), attrsFor(p)); err != nil {
				t.Fatalf("%s Put of %d bytes: %v", kind, n, err)
			}
			bucket, k := s.Locate("ns", key)
			head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatalf("HeadObject: %v", err)
			}
			want := sha256.Sum256(p)
			if got := aws.ToString(head.ChecksumSHA256); got != base64.StdEncoding.EncodeToString(want[:]) {
				t.Errorf("stored SHA-256 checksum %q, want the payload's", got)
			}
		}
	}
	// An MD5 digest (kstash's legacy addresses) is no SHA-256: the body is
	// hashed, and the Put succeeds.
	p := payload(500, 22)
	a := attrsFor(p)
	a.Digest = a.Digest[:32]
	if err := s.Put(ctx, "ns", "legacy."+a.Digest, bytes.NewReader(p), int64(len(p)), a); err != nil {
		t.Fatalf("Put with an MD5-length digest: %v", err)
	}
}

// TestPutExisting checks If-None-Match on both paths: a second Put of the
// key is ErrExists and leaves the first bytes. The same bytes put again
// are ErrExists every time, also for a body of several MiB, which MinIO
// refuses before reading it all, cutting the connection (see
// TestPutExistingCutConnection).
func TestPutExisting(t *testing.T) {
	s, _ := newStore(t, s3stash.Config{})
	ctx := context.Background()
	for _, n := range []int{100, partSize, 2*partSize + 7} {
		first, second := payload(n, 1), payload(n, 2)
		key := fmt.Sprintf("dup%d.%s", n, hexSHA(first))
		if err := s.Put(ctx, "ns", key, bytes.NewReader(first), int64(n), attrsFor(first)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		err := s.Put(ctx, "ns", key, bytes.NewReader(second), int64(n), attrsFor(second))
		if !errors.Is(err, driver.ErrExists) {
			t.Fatalf("second Put of %d bytes: got %v, want ErrExists", n, err)
		}
		if got, _ := get(t, s, "ns", key); !bytes.Equal(got, first) {
			t.Fatalf("second Put of %d bytes replaced the object", n)
		}
		rounds := 1
		if n == partSize {
			rounds = 15
		}
		for i := range rounds {
			if err := s.Put(ctx, "ns", key, bytes.NewReader(first), int64(n), attrsFor(first)); !errors.Is(err, driver.ErrExists) {
				t.Fatalf("Put %d of the same %d bytes again: got %v, want ErrExists", i+1, n, err)
			}
		}
	}
}

// TestFailedMultipart checks that a reader failing mid-way, or too short or
// too long, leaves nothing readable and no multipart upload behind.
func TestFailedMultipart(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	ctx := context.Background()
	n := 3*partSize + 5
	p := payload(n, 3)
	cases := map[string]io.Reader{
		"failing": io.MultiReader(bytes.NewReader(p[:2*partSize+10]), iotest.ErrReader(errors.New("connection reset"))),
		"short":   bytes.NewReader(p[:n-1]),
		"long":    bytes.NewReader(append(append([]byte{}, p...), 'x')),
		// The same through plain readers, read part by part.
		"short-stream": struct{ io.Reader }{bytes.NewReader(p[:n-1])},
		"long-stream":  struct{ io.Reader }{bytes.NewReader(append(append([]byte{}, p...), 'x'))},
	}
	for name, r := range cases {
		key := name + "." + hexSHA(p)
		if err := s.Put(ctx, "ns", key, r, int64(n), attrsFor(p)); err == nil {
			t.Errorf("%s: Put succeeded", name)
		}
		if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("%s: Stat after a failed Put: got %v, want ErrNotFound", name, err)
		}
	}
	// A cancelled upload too.
	cctx, cancel := context.WithCancel(ctx)
	r := &cancelAfter{r: bytes.NewReader(p), n: 2 * partSize, cancel: cancel}
	if err := s.Put(cctx, "ns", "cancelled."+hexSHA(p), r, int64(n), attrsFor(p)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Put: got %v, want context.Canceled", err)
	}
	bucket, _ := s.Locate("ns", "x")
	ups, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(strings.TrimSuffix(mustPrefix(s), "x"))})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind", len(ups.Uploads))
	}
}

func mustPrefix(s *s3stash.Store) string { _, k := s.Locate("ns", "x"); return k }

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	n, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= n
	return n, err
}

// TestReaderCloseEarly closes a ranged reader after a few bytes: the
// fetches stop and a later Read fails instead of returning data.
func TestReaderCloseEarly(t *testing.T) {
	s, _ := newStore(t, s3stash.Config{})
	ctx := context.Background()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		// Idle keep-alive connections of the SDK's HTTP client.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
	p := payload(5*partSize, 4)
	key := "early." + hexSHA(p)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	rc, _, err := s.Get(ctx, "ns", key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, p[:1000]) {
		t.Fatalf("first read: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, err := rc.Read(buf); n != 0 || err == nil {
		t.Fatalf("Read after Close = %d, %v; want 0 and an error", n, err)
	}
	// The object deleted while a read is on: the reader fails, never
	// returning short data as a clean EOF.
	rc, _, err = s.Get(ctx, "ns", key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	if err := s.Delete(ctx, "ns", key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	got, err := io.ReadAll(rc)
	if err == nil && !bytes.Equal(got, p) {
		t.Fatalf("read of a deleted object ended cleanly after %d of %d bytes", len(got), len(p))
	}
}

// TestBucketPerNamespace runs the default layout: each namespace is a
// bucket. A missing bucket is ErrNotFound, or created with CreateBuckets.
func TestBucketPerNamespace(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	plain, err := s3stash.NewConfig(srv.Client(), s3stash.Config{Buckets: []string{"orders-a", "orders-b"}})
	if err != nil {
		t.Fatal(err)
	}
	p := payload(300, 5)
	key := "org=1/order." + hexSHA(p)
	if err := plain.Put(ctx, "orders-a", key, bytes.NewReader(p), 300, attrsFor(p)); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Put into a missing bucket: got %v, want ErrNotFound", err)
	}
	if _, _, err := plain.Get(ctx, "orders-a", key); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Get from a missing bucket: got %v, want ErrNotFound", err)
	}

	creating, err := s3stash.NewConfig(srv.Client(), s3stash.Config{CreateBuckets: true, Buckets: []string{"orders-a", "orders-b"}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(creating), stash.WithInlineMax(-1), stash.WithNamespace("orders-a"))
	if err != nil {
		t.Fatal(err)
	}
	small, err := e.Create(ctx, "order", p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	big := payload(2*partSize+3, 6)
	large, err := e.Create(ctx, "order", big, stash.InNamespace("orders-b"), stash.TTL(time.Hour))
	if err != nil {
		t.Fatalf("Create (multipart, new bucket): %v", err)
	}
	if want := "s3://orders-b/order." + hexSHA(big); large.Address.String() != want {
		t.Errorf("address %s, want %s", large.Address, want)
	}
	for _, s := range []*stash.Stash{small, large} {
		got, err := e.Retrieve(ctx, s.Address.String())
		if err != nil {
			t.Fatalf("Retrieve %s: %v", s.Address, err)
		}
		if got.Size != s.Size || hexSHA(got.Data) != s.Address.Digest {
			t.Errorf("Retrieve %s returned other bytes", s.Address)
		}
	}
	if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("orders-b"), Key: aws.String("order." + hexSHA(big))}); err != nil {
		t.Errorf("object not where the layout says: %v", err)
	}
	var listed []string
	if err := creating.List(ctx, func(ns, key string, _ *driver.Attributes) error {
		listed = append(listed, ns+"/"+key)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(listed) != 2 {
		t.Errorf("List saw %v, want the two stashes", listed)
	}
}

// TestAttributes checks non-ASCII metadata round-trips and the user
// metadata limit.
func TestAttributes(t *testing.T) {
	s, _ := newStore(t, s3stash.Config{})
	ctx := context.Background()
	p := payload(10, 7)
	a := attrsFor(p)
	a.Metadata = map[string]string{"city": "Zürich", "emoji": "📦", "quote": `"a"  b`, "ctl": "tab\tnl\n"}
	a.ContentType = "text/plain; charset=utf-8"
	a.ExpiresAt = a.Created.Add(time.Hour)
	key := "meta." + hexSHA(p)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(p), 10, a); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Stat(ctx, "ns", key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	for k, v := range a.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("metadata %q = %q, want %q", k, got.Metadata[k], v)
		}
	}
	if got.ContentType != a.ContentType || !got.ExpiresAt.Equal(a.ExpiresAt) || !got.Created.Equal(a.Created) {
		t.Errorf("attributes %+v, want %+v", got, a)
	}

	a.Metadata = map[string]string{"big": strings.Repeat("x", s3stash.MaxMetadataSize)}
	if err := s.Put(ctx, "ns", "toobig."+hexSHA(p), bytes.NewReader(p), 10, a); !errors.Is(err, driver.ErrTooLarge) {
		t.Errorf("Put with %d bytes of metadata: got %v, want ErrTooLarge", s3stash.MaxMetadataSize, err)
	}
}

// TestForeignObject reads an object another tool wrote under a stash key:
// the engine still verifies it against the address.
func TestForeignObject(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	ctx := context.Background()
	p := payload(500, 8)
	key := "foreign." + hexSHA(p)
	bucket, k := s.Locate("ns", key)
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(p)}); err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s))
	if err != nil {
		t.Fatal(err)
	}
	addr := "s3://ns/" + key
	got, err := e.Retrieve(ctx, addr)
	if err != nil || !bytes.Equal(got.Data, p) {
		t.Fatalf("Retrieve of a foreign object: %v", err)
	}
	if err := corrupt(ctx, srv.Client(), bucket, k); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retrieve(ctx, addr); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Retrieve of a corrupted foreign object: got %v, want ErrIntegrity", err)
	}
}

// TestSignURL fetches a presigned URL over plain HTTP, and checks that a
// tampered one is refused.
func TestSignURL(t *testing.T) {
	s, _ := newStore(t, s3stash.Config{})
	ctx := context.Background()
	p := payload(1234, 9)
	key := "shared." + hexSHA(p)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatal(err)
	}
	u, err := s.SignURL(ctx, driver.LinkRequest{Scheme: s3stash.Scheme, Namespace: "ns", Key: key, Expires: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatalf("SignURL: %v", err)
	}
	fetch := func(u string) (int, []byte) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := fetch(u); code != http.StatusOK || !bytes.Equal(body, p) {
		t.Fatalf("GET of the presigned URL: %d, %d bytes", code, len(body))
	}
	tampered := strings.Replace(u, "shared.", "sharee.", 1)
	if code, _ := fetch(tampered); code != http.StatusForbidden {
		t.Errorf("GET of a tampered URL: %d, want 403", code)
	}
	for _, ttl := range []time.Duration{0, -time.Second, s3stash.MaxPresignTTL + time.Second} {
		if _, err := s.SignURL(ctx, driver.LinkRequest{Scheme: s3stash.Scheme, Namespace: "ns", Key: key, Expires: time.Now().Add(ttl)}); err == nil {
			t.Errorf("SignURL with TTL %v succeeded", ttl)
		}
	}
}

// TestShare shares a stash through the engine: the link is an S3 presigned
// URL that plain HTTP can fetch, and that Retrieve verifies.
func TestShare(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	ctx := context.Background()
	f, err := links.NewFetcher(links.TrustOrigins(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1), stash.WithLinkFetcher(f))
	if err != nil {
		t.Fatal(err)
	}
	p := payload(partSize+77, 13)
	st, err := e.Create(ctx, "shared", p, stash.Compress(stash.CompressionNone))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	link, err := e.Share(ctx, st.Address.String(), time.Minute)
	if err != nil {
		t.Fatalf("Share: %v", err)
	}
	if !strings.HasPrefix(link, srv.Endpoint+"/") || !strings.Contains(link, "X-Amz-Signature=") {
		t.Fatalf("Share returned %q, want a presigned URL of the server", link)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, p) {
		t.Fatalf("GET of the link: %d, %d bytes", resp.StatusCode, len(body))
	}
	got, err := e.Retrieve(ctx, link)
	if err != nil || !bytes.Equal(got.Data, p) {
		t.Fatalf("Retrieve of the link: %v", err)
	}
}

// TestErrors checks that failures other than a missing object are wrapped
// with their cause and are not ErrNotFound.
func TestErrors(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	bad := s3.New(s3.Options{
		Region: miniotest.Region, BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(miniotest.AccessKey, "wrong-secret", ""),
	})
	s, err := s3stash.New(bad, s3stash.WithBucket(testBucket))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(ctx, "ns", "x.00")
	var ae smithy.APIError
	if err == nil || errors.Is(err, driver.ErrNotFound) || !strings.HasPrefix(err.Error(), "s3stash: ") {
		t.Fatalf("Stat with a wrong secret: got %v, want a wrapped authentication error", err)
	}
	if _, _, err := s.Get(ctx, "ns", "x.00"); !errors.As(err, &ae) || ae.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("Get with a wrong secret: got %v, want SignatureDoesNotMatch reachable with errors.As", err)
	}

	// Nothing listening: retried, then wrapped.
	isolateAWSConfig(t)
	down, err := s3stash.Open(ctx, s3stash.WithEndpoint("http://127.0.0.1:1"), s3stash.WithRegion("us-east-1"), s3stash.PathStyle(), s3stash.WithMaxAttempts(2), s3stash.WithBucket(testBucket))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Stat(ctx, "ns", "x.00"); err == nil || errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat with no server: got %v", err)
	}
}

// isolateAWSConfig points the SDK's default chain at the MinIO credentials
// and away from the machine's files (and from IMDS).
func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestServerRestart kills the server under a store: calls fail with a
// wrapped error (never ErrNotFound), and succeed again once it is back,
// with the data intact.
func TestServerRestart(t *testing.T) {
	srv := miniotest.Start(t, "restart")
	s, err := s3stash.NewConfig(srv.Client(), s3stash.Config{PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := payload(partSize+10, 12)
	key := "survivor." + hexSHA(p)
	if err := s.Put(ctx, "restart", key, bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	srv.Kill()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = s.Stat(short, "restart", key)
	if err == nil || errors.Is(err, driver.ErrNotFound) || !strings.HasPrefix(err.Error(), "s3stash: stat: ") || strings.Contains(err.Error(), key+":") {
		t.Fatalf("Stat with the server down: got %v, want a wrapped connection error", err)
	}
	srv.Restart(t)
	if got, _ := get(t, s, "restart", key); !bytes.Equal(got, p) {
		t.Fatalf("after a restart Get returned other bytes")
	}
}

// TestURL opens the backend through the scheme registry.
func TestURL(t *testing.T) {
	srv := server(t)
	isolateAWSConfig(t)
	ctx := context.Background()
	u := fmt.Sprintf("s3://?region=us-east-1&endpoint=%s&path_style=true&bucket=%s&prefix=%s&part_size=%d&concurrency=2&max_attempts=4&retry_mode=adaptive",
		srv.Endpoint, testBucket, freshPrefix(), partSize)
	e, err := stash.New(stash.WithBackendURL(ctx, u), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatalf("stash.New(WithBackendURL(%q)): %v", u, err)
	}
	defer e.Close()
	p := payload(partSize+100, 10)
	s, err := e.Create(ctx, "viaurl", p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := e.Retrieve(ctx, s.Address.String())
	if err != nil || !bytes.Equal(got.Data, p) {
		t.Fatalf("Retrieve: %v", err)
	}

	for _, bad := range []string{
		"s3://?buckets=a&buckets=b",
		"s3://bucket",
		"s3:///path",
		"s3://?nope=1",
		"s3://?region=a&region=b",
		"s3://?path_style=maybe",
		"s3://?part_size=1024",
		"s3://?part_size=x",
		"s3://?concurrency=-1",
		"s3://?endpoint=ftp://x",
		"s3://?endpoint=%3A",
		"s3://?retry_mode=sometimes",
		"s3://?max_attempts=-2",
		"s3://?endpoint=http://minio:99999",
	} {
		d, err := stash.OpenDriver(ctx, bad)
		if err == nil {
			d.Close()
			t.Errorf("OpenDriver(%q) succeeded", bad)
			continue
		}
		if !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("OpenDriver(%q): %v, want ErrInvalidAddress", bad, err)
		}
	}
	for _, opt := range []s3stash.OpenOption{
		s3stash.WithEndpoint("http://minio:99999"),
		s3stash.WithEndpoint("minio:9000"),
	} {
		if _, err := s3stash.Open(ctx, opt); !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("Open with a bad endpoint: %v, want ErrInvalidAddress", err)
		}
	}
}

// TestOptionsFromURL checks that each query parameter lands in its field.
func TestOptionsFromURL(t *testing.T) {
	u, err := url.Parse("s3://?region=eu-west-1&endpoint=https%3A%2F%2Fminio.local%3A9000&path_style=true&max_attempts=7&retry_mode=adaptive" +
		"&bucket=b1&prefix=p%2F&part_size=16777216&concurrency=9&buckets=x,y,&create_buckets=1&conditional_writes=false")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s3stash.OptionsFromURL(u)
	if err != nil {
		t.Fatalf("OptionsFromURL: %v", err)
	}
	want := &s3stash.Config{
		Region: "eu-west-1", Endpoint: "https://minio.local:9000", PathStyle: true, MaxAttempts: 7, RetryMode: aws.RetryModeAdaptive,
		Bucket: "b1", Prefix: "p/", PartSize: 16 << 20, Concurrency: 9, Buckets: []string{"x", "y"}, CreateBuckets: true,
		NoConditionalWrites: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OptionsFromURL = %+v\nwant             %+v", got, want)
	}
	empty, err := s3stash.OptionsFromURL(&url.URL{Scheme: "s3"})
	if err != nil || !reflect.DeepEqual(empty, &s3stash.Config{}) {
		t.Errorf("OptionsFromURL(s3://) = %+v, %v; want the zero configuration", empty, err)
	}
	on, err := s3stash.OptionsFromURL(&url.URL{Scheme: "s3", RawQuery: "conditional_writes=true"})
	if err != nil || on.NoConditionalWrites {
		t.Errorf("OptionsFromURL(conditional_writes=true) = %+v, %v; want conditional writes", on, err)
	}
	if _, err := s3stash.OptionsFromURL(&url.URL{Scheme: "s3", RawQuery: "conditional_writes=maybe"}); !errors.Is(err, driver.ErrInvalidAddress) {
		t.Errorf("OptionsFromURL(conditional_writes=maybe) = %v; want ErrInvalidAddress", err)
	}
}

// TestOpenKeepsIdleConnections: the client Open builds keeps enough idle
// connections per host for read-ahead across partitions, not the SDK's 10.
func TestOpenKeepsIdleConnections(t *testing.T) {
	tr := s3stash.NewHTTPClient().GetTransport()
	if tr.MaxIdleConnsPerHost != s3stash.IdleConnsPerHost || tr.MaxIdleConns < s3stash.IdleConnsPerHost {
		t.Fatalf("idle connections per host %d (of %d in all), want %d", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, s3stash.IdleConnsPerHost)
	}
	if tr.TLSHandshakeTimeout == 0 || tr.Proxy == nil {
		t.Error("the SDK's transport defaults (TLS handshake timeout, proxy from the environment) were lost")
	}
}
