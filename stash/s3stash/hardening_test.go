package s3stash_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// rawView is what a client without claimstash sees of an object: its
// headers, and its body with Content-Encoding undone.
type rawView struct {
	contentType, contentEncoding string
	meta                         map[string]string // x-amz-meta-*, lower case, without the prefix
	payload                      []byte
}

func decodeBody(t *testing.T, encoding string, body []byte) []byte {
	t.Helper()
	switch encoding {
	case "":
		return body
	case "zstd":
		dec, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		out, err := dec.DecodeAll(body, nil)
		if err != nil {
			t.Fatalf("body labelled Content-Encoding: zstd does not decode: %v", err)
		}
		return out
	}
	t.Fatalf("unexpected Content-Encoding %q", encoding)
	return nil
}

// viaSDK reads the object with a plain GetObject of the AWS SDK.
func viaSDK(t *testing.T, c *s3.Client, bucket, key string) rawView {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	v := rawView{contentType: aws.ToString(out.ContentType), contentEncoding: aws.ToString(out.ContentEncoding), meta: out.Metadata}
	v.payload = decodeBody(t, v.contentEncoding, body)
	return v
}

// viaHTTP follows a link with plain net/http, as a browser or a script would.
func viaHTTP(t *testing.T, link string) rawView {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET of the link: %s, %v", resp.Status, err)
	}
	v := rawView{contentType: resp.Header.Get("Content-Type"), contentEncoding: resp.Header.Get("Content-Encoding"), meta: map[string]string{}}
	for k := range resp.Header {
		if m, ok := cutFold(k, "X-Amz-Meta-"); ok {
			v.meta[m] = resp.Header.Get(k)
		}
	}
	v.payload = decodeBody(t, v.contentEncoding, body)
	return v
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !bytes.EqualFold([]byte(s[:len(prefix)]), []byte(prefix)) {
		return "", false
	}
	return string(bytes.ToLower([]byte(s[len(prefix):]))), true
}

func shareEngine(t *testing.T) (*stash.Engine, *s3stash.Store, *s3.Client) {
	t.Helper()
	s, srv := newStore(t, s3stash.Config{})
	f, err := links.NewFetcher(links.TrustOrigins(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1), stash.WithLinkFetcher(f))
	if err != nil {
		t.Fatal(err)
	}
	return e, s, srv.Client()
}

// Issue 11, item 8: a zstd stash on S3 had no Content-Encoding and lost its
// Content-Type, so a raw client (the SDK's GetObject, a presigned share
// link followed by a browser or a script) got zstd bytes it could not
// recognise. Compressed objects now carry Content-Encoding: zstd and the
// real Content-Type, single-part and multipart, also after an update of
// their attributes.
func TestCompressedObjectsCarryStandardHeaders(t *testing.T) {
	ctx := context.Background()
	e, s, raw := shareEngine(t)
	for _, c := range []struct {
		name string
		p    []byte
		enc  string
	}{
		{"zstd", stashtest.JSONPayload(200_000, 61), "zstd"},
		{"zstd-multipart", stashtest.RandomPayload(partSize+1000, 62), "zstd"},
		{"identity", stashtest.RandomPayload(50_000, 63), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			opts := []stash.CreateOption{stash.ContentType("application/json"), stash.TTL(time.Hour)}
			if c.name == "zstd-multipart" {
				// Random bytes then zeros: compressed, still over a part.
				p = append(p, make([]byte, 2<<20)...)
				opts = append(opts, stash.Compress(stash.CompressionZstd))
			}
			st, err := e.Create(ctx, c.name, p, opts...)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if string(st.Encoding) != c.enc {
				t.Fatalf("stored with encoding %q, want %q (test payload)", st.Encoding, c.enc)
			}
			if c.name == "zstd-multipart" && st.StoredSize <= partSize {
				t.Fatalf("compressed object of %d bytes is not multipart (test payload)", st.StoredSize)
			}
			// Creating it again rewrites the attributes (a copy onto
			// itself): the headers must survive that too.
			if _, err := e.Create(ctx, c.name, p, append(opts, stash.TTL(2*time.Hour))...); err != nil {
				t.Fatalf("second Create: %v", err)
			}
			bucket, key := s.Locate(st.Address.Namespace, st.Address.Key())
			link, err := e.Share(ctx, st.String(), time.Minute)
			if err != nil {
				t.Fatalf("Share: %v", err)
			}
			for via, v := range map[string]rawView{"GetObject": viaSDK(t, raw, bucket, key), "presigned link": viaHTTP(t, link)} {
				if v.contentEncoding != c.enc {
					t.Errorf("%s: Content-Encoding %q, want %q", via, v.contentEncoding, c.enc)
				}
				if v.contentType != "application/json" {
					t.Errorf("%s: Content-Type %q, want the payload's, application/json", via, v.contentType)
				}
				if !bytes.Equal(v.payload, p) {
					t.Errorf("%s: body with Content-Encoding undone is %d bytes, not the payload (%d bytes)", via, len(v.payload), len(p))
				}
			}
			got, err := e.Retrieve(ctx, link)
			if err != nil || !bytes.Equal(got.Data, p) {
				t.Errorf("Retrieve of the link: %v", err)
			}
		})
	}
}

// Issue 11, item 9: objects over the multipart threshold carry a COMPOSITE
// checksum, not the address's SHA-256, which lived only inside the
// claimstash metadata JSON. Every object now has it in its own metadata
// header, which a raw client can check its download against.
func TestDigestHeaderForRawClients(t *testing.T) {
	ctx := context.Background()
	e, s, raw := shareEngine(t)
	for name, p := range map[string][]byte{
		"multipart": stashtest.RandomPayload(2*partSize+123, 71),
		"single":    stashtest.RandomPayload(10_000, 72),
		"zstd":      stashtest.JSONPayload(300_000, 73),
	} {
		t.Run(name, func(t *testing.T) {
			st, err := e.Create(ctx, name, p)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			bucket, key := s.Locate(st.Address.Namespace, st.Address.Key())
			head, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			if got := head.Metadata[s3stash.DigestMetadataKey]; got != st.Address.Digest {
				t.Errorf("HeadObject: metadata %s = %q, want the address digest %s", s3stash.DigestMetadataKey, got, st.Address.Digest)
			}
			link, err := e.Share(ctx, st.String(), time.Minute)
			if err != nil {
				t.Fatalf("Share: %v", err)
			}
			for via, v := range map[string]rawView{"GetObject": viaSDK(t, raw, bucket, key), "presigned link": viaHTTP(t, link)} {
				want := v.meta[s3stash.DigestMetadataKey]
				if want != st.Address.Digest {
					t.Errorf("%s: %s = %q, want %s", via, s3stash.DigestMetadataKey, want, st.Address.Digest)
				}
				if got := hexSHA(v.payload); got != want {
					t.Errorf("%s: the download hashes to %s, the header says %s", via, got, want)
				}
			}
		})
	}
}

// Issue 11, item 1, against a real server: a presigned link whose fragment
// is edited to claim 512 MiB of zstd is refused before its body is read,
// because the attributes S3 returns with the object contradict it, and it
// costs no allocation of the size it claims.
func TestEditedLinkFragmentRefused(t *testing.T) {
	ctx := context.Background()
	e, _, _ := shareEngine(t)
	p := stashtest.RandomPayload(1<<10, 74)
	st, err := e.Create(ctx, "linked", p)
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, st.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	base, frag, ok := strings.Cut(link, "#")
	if !ok {
		t.Fatalf("presigned link %q has no fragment", link)
	}
	q, err := url.ParseQuery(frag)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("size", "536870912")
	q.Set("enc", "zstd")
	edited := base + "#" + q.Encode()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = e.Retrieve(ctx, edited)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, stash.ErrIntegrity) || !strings.Contains(err.Error(), "server's object") {
		t.Errorf("Retrieve of an edited link: %v, want ErrIntegrity from the server's description of the object", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("Retrieve of an edited link allocated %d MiB, want at most 4", n>>20)
	}
	if got, err := e.Retrieve(ctx, link); err != nil || !bytes.Equal(got.Data, p) {
		t.Errorf("Retrieve of the link as shared: %v", err)
	}
}

// Attributes in the object's metadata that do not decode are ErrIntegrity,
// with a message naming no Go type (encoding/json's would: "Go struct
// field Attributes.size of type int64").
func TestDamagedAttributesNamedPlainly(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	ctx := context.Background()
	goIdentifiers := regexp.MustCompile(`Go (struct|value)|int64|driver\.|Attributes|map\[`)
	for i, bad := range []string{`{"size":"many"}`, `[]`} {
		p := payload(10, uint64(i))
		key := "bad." + hexSHA(p)
		bk, k := s.Locate("ns", key)
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bk), Key: aws.String(k), Body: bytes.NewReader(p),
			Metadata: map[string]string{"claimstash": bad},
		}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Stat(ctx, "ns", key)
		if !errors.Is(err, driver.ErrIntegrity) {
			t.Fatalf("Stat with attributes %s: %v, want ErrIntegrity", bad, err)
		}
		if goIdentifiers.MatchString(err.Error()) {
			t.Errorf("Stat with attributes %s: %q names Go types", bad, err)
		}
	}
}

// A namespace that cannot name a bucket (when namespaces are buckets) is
// ErrInvalidAddress for every operation, before any request: S3 answered
// InvalidBucketName, or a bare 400 to a HEAD, which matched no sentinel.
func TestNamespaceNoBucketName(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	s, err := s3stash.NewConfig(srv.Client(), s3stash.Config{PartSize: partSize, CreateBuckets: true})
	if err != nil {
		t.Fatal(err)
	}
	p := payload(10, 3)
	key := "x." + hexSHA(p)
	for _, ns := range []string{"ns", "a", "xn--abc", "orders-s3alias", strings.Repeat("n", 64)} {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, driver.ErrInvalidAddress) {
				t.Errorf("%s in namespace %q: %v, want ErrInvalidAddress", op, ns, err)
			}
		}
		check("Put", s.Put(ctx, ns, key, bytes.NewReader(p), int64(len(p)), attrsFor(p)))
		_, err := s.Stat(ctx, ns, key)
		check("Stat", err)
		_, _, err = s.Get(ctx, ns, key)
		check("Get", err)
		check("Delete", s.Delete(ctx, ns, key))
		check("UpdateAttributes", s.UpdateAttributes(ctx, ns, key, attrsFor(p)))
		_, err = s.ModifyAttributes(ctx, ns, key, func(a *driver.Attributes) *driver.Attributes { return a })
		check("ModifyAttributes", err)
		_, err = s.DeleteIf(ctx, ns, key, func(*driver.Attributes) bool { return true })
		check("DeleteIf", err)
		_, err = s.SignURL(ctx, driver.LinkRequest{Scheme: s3stash.Scheme, Namespace: ns, Key: key, Expires: time.Now().Add(time.Hour)})
		check("SignURL", err)
	}
	// Namespaces that are bucket names work as ever.
	if err := s.Put(ctx, "ok-bucket", key, bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, "ok-bucket", key); !bytes.Equal(got, p) {
		t.Fatal("Get returned other bytes")
	}
}
