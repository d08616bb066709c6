package s3stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// The tests in this file run the AWS CLI (1.x, from the virtualenv `make
// tools` builds) against the stashes of a real MinIO: what s3stash writes is
// listed and downloaded by `aws s3` and `aws s3api` with checksum validation
// on, and what a user uploads with `aws s3 cp` under the documented layout
// (bucket = namespace, key = [scopes/]name.<sha256>) is read by the engine.

var awsBuckets atomic.Int64

// awsCLI is an aws command against the shared MinIO.
type awsCLI struct {
	t        *testing.T
	bin      string
	env      []string
	endpoint string
}

func newAWSCLI(t *testing.T, srv *miniotest.Server) *awsCLI {
	t.Helper()
	return &awsCLI{t: t, bin: clitool.AWS(t), env: clitool.AWSEnv(t, miniotest.AccessKey, miniotest.SecretKey, miniotest.Region), endpoint: srv.Endpoint}
}

func (a *awsCLI) args(args []string) []string {
	return append([]string{"--endpoint-url", a.endpoint, "--output", "json"}, args...)
}

// run runs aws and fails the test on a non-zero exit.
func (a *awsCLI) run(args ...string) []byte {
	a.t.Helper()
	return clitool.Run(a.t, context.Background(), a.env, nil, a.bin, a.args(args)...)
}

// runJSON runs aws and decodes its JSON answer.
func (a *awsCLI) runJSON(v any, args ...string) {
	a.t.Helper()
	out := a.run(args...)
	if err := json.Unmarshal(out, v); err != nil {
		a.t.Fatalf("aws %q: %v in %s", args, err, out)
	}
}

// awsObject is what `aws s3api head-object` and `get-object` print.
type awsObject struct {
	ContentLength   int64
	ContentType     string
	ContentEncoding string
	ETag            string
	ChecksumSHA256  string
	ChecksumCRC32C  string
	ChecksumType    string
	Metadata        map[string]string
}

// awsEngine is an engine whose s3 backend keeps the documented default
// layout (bucket = namespace, key = the address after it, no prefix) over a
// bucket of the test's own, small parts so that multipart is cheap.
func awsEngine(t *testing.T, opts ...stash.Option) (*stash.Engine, *s3stash.Store, *miniotest.Server, string) {
	t.Helper()
	srv := server(t)
	bucket := fmt.Sprintf("awscli-%d-%d", time.Now().UnixNano()%1e6, awsBuckets.Add(1))
	srv.CreateBucket(t, bucket)
	s, err := s3stash.NewConfig(srv.Client(), s3stash.Config{PartSize: partSize, Buckets: []string{bucket}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackend(s), stash.WithNamespace(bucket), stash.WithInlineMax(-1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e, s, srv, bucket
}

// halfRandom is n bytes of 2 KiB random blocks each repeated once: zstd
// stores them in about half, so a large one is still multipart once
// compressed.
func halfRandom(n int, seed uint64) []byte {
	r := payload((n+1)/2, seed)
	out := make([]byte, 0, n+4096)
	for len(r) > 0 {
		b := r[:min(2048, len(r))]
		r = r[len(b):]
		out = append(append(out, b...), b...)
	}
	return out[:n]
}

func b64SHA(p []byte) string { s := sha256.Sum256(p); return base64.StdEncoding.EncodeToString(s[:]) }

func unzstd(t *testing.T, p []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := d.DecodeAll(p, nil)
	if err != nil {
		t.Fatalf("the stored bytes are not zstd: %v", err)
	}
	return out
}

// TestAWSCLIReadsStashes: objects the engine wrote (single-part and
// multipart, compressed and stored as given, with a content type and caller
// metadata) are listed by `aws s3 ls` and downloaded byte-exact by
// `aws s3api get-object --checksum-mode ENABLED` and `aws s3 cp
// --checksum-mode ENABLED`, which validate S3's checksum; the headers are the
// documented ones: Content-Type the payload's, Content-Encoding zstd when
// compressed, x-amz-meta-claimstash-sha256 the address digest, the
// attributes JSON in x-amz-meta-claimstash, S3's checksum the SHA-256 of a
// single-part object and a COMPOSITE CRC32C of a multipart one, whose parts
// `aws s3api get-object-attributes` lists each with the CRC32C of its bytes.
func TestAWSCLIReadsStashes(t *testing.T) {
	e, _, srv, bucket := awsEngine(t)
	aws := newAWSCLI(t, srv)
	ctx := context.Background()
	dir := t.TempDir()

	cases := []struct {
		name      string
		data      []byte
		comp      stash.Compression
		multipart bool
	}{
		{"single-raw", payload(100<<10, 21), stash.CompressionNone, false},
		{"single-zstd", halfRandom(300<<10, 22), stash.CompressionZstd, false},
		{"multi-raw", payload(2*partSize+333, 23), stash.CompressionNone, true},
		{"multi-zstd", halfRandom(3*partSize, 24), stash.CompressionZstd, true},
	}
	var listed struct {
		Contents []struct {
			Key  string
			Size int64
		}
	}
	stored := map[string]*stash.Stash{}
	for _, c := range cases {
		st, err := e.Create(ctx, c.name, c.data, stash.Compress(c.comp), stash.ContentType("application/x-"+c.name),
			stash.Metadata(map[string]string{"case": c.name, "team": "interop"}))
		if err != nil {
			t.Fatalf("%s: Create: %v", c.name, err)
		}
		if wantZstd := c.comp == stash.CompressionZstd; (st.Encoding == driver.EncodingZstd) != wantZstd {
			t.Fatalf("%s: stored with encoding %q", c.name, st.Encoding)
		}
		if c.multipart != (st.StoredSize > partSize) {
			t.Fatalf("%s: stored %d bytes: the case does not test what it says (part size %d)", c.name, st.StoredSize, partSize)
		}
		stored[c.name] = st
	}
	aws.runJSON(&listed, "s3api", "list-objects-v2", "--bucket", bucket)
	ls := string(aws.run("s3", "ls", "s3://"+bucket+"/"))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := stored[c.name]
			key := st.Address.Key()
			if key != c.name+"."+hexSHA(c.data) {
				t.Fatalf("object key %q, want the documented name.<sha256>", key)
			}
			found := false
			for _, o := range listed.Contents {
				if o.Key == key {
					found = o.Size == st.StoredSize
				}
			}
			if !found || !strings.Contains(ls, " "+strconv.FormatInt(st.StoredSize, 10)+" "+key+"\n") {
				t.Errorf("aws does not list %s with its stored size %d:\n%+v\n%s", key, st.StoredSize, listed, ls)
			}

			var head, got awsObject
			aws.runJSON(&head, "s3api", "head-object", "--bucket", bucket, "--key", key, "--checksum-mode", "ENABLED")
			out := filepath.Join(dir, c.name+".api")
			aws.runJSON(&got, "s3api", "get-object", "--bucket", bucket, "--key", key, "--checksum-mode", "ENABLED", out)
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			cp := filepath.Join(dir, c.name+".cp")
			aws.run("s3", "cp", "--checksum-mode", "ENABLED", "s3://"+bucket+"/"+key, cp)
			rawCp, err := os.ReadFile(cp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rawCp, raw) {
				t.Errorf("aws s3 cp and aws s3api get-object downloaded different bytes")
			}
			if int64(len(raw)) != st.StoredSize {
				t.Fatalf("downloaded %d bytes, stored %d", len(raw), st.StoredSize)
			}
			payload := raw
			if c.comp == stash.CompressionZstd {
				payload = unzstd(t, raw)
			}
			if !bytes.Equal(payload, c.data) {
				t.Fatalf("downloaded payload differs from what was stashed")
			}

			if c.multipart {
				var attrs struct {
					ObjectParts struct {
						TotalPartsCount int
						Parts           []struct {
							PartNumber     int
							Size           int64
							ChecksumCRC32C string
						}
					}
				}
				aws.runJSON(&attrs, "s3api", "get-object-attributes", "--bucket", bucket, "--key", key,
					"--object-attributes", "ObjectParts", "Checksum")
				tab := crc32.MakeTable(crc32.Castagnoli)
				for i, part := range attrs.ObjectParts.Parts {
					off := int64(part.PartNumber-1) * partSize
					if part.PartNumber < 1 || off+part.Size > int64(len(raw)) {
						t.Fatalf("part %+v outside the object", part)
					}
					sum := binary.BigEndian.AppendUint32(nil, crc32.Checksum(raw[off:off+part.Size], tab))
					if part.ChecksumCRC32C != base64.StdEncoding.EncodeToString(sum) {
						t.Errorf("part %d: x-amz-checksum-crc32c %q, want the CRC32C of its bytes", i+1, part.ChecksumCRC32C)
					}
				}
				if n := int((st.StoredSize + partSize - 1) / partSize); attrs.ObjectParts.TotalPartsCount != n || len(attrs.ObjectParts.Parts) != n {
					t.Errorf("aws s3api get-object-attributes: %d parts (%d listed), want %d", attrs.ObjectParts.TotalPartsCount, len(attrs.ObjectParts.Parts), n)
				}
			}

			for _, o := range []awsObject{head, got} {
				if o.ContentLength != st.StoredSize || o.ContentType != "application/x-"+c.name {
					t.Errorf("length %d, type %q; want %d, %q", o.ContentLength, o.ContentType, st.StoredSize, "application/x-"+c.name)
				}
				wantEnc := ""
				if c.comp == stash.CompressionZstd {
					wantEnc = "zstd"
				}
				if o.ContentEncoding != wantEnc {
					t.Errorf("Content-Encoding %q, want %q", o.ContentEncoding, wantEnc)
				}
				if o.Metadata[s3stash.DigestMetadataKey] != st.Address.Digest {
					t.Errorf("x-amz-meta-%s = %q, want the address digest %s", s3stash.DigestMetadataKey, o.Metadata[s3stash.DigestMetadataKey], st.Address.Digest)
				}
				var attrs driver.Attributes
				if err := json.Unmarshal([]byte(o.Metadata["claimstash"]), &attrs); err != nil {
					t.Fatalf("x-amz-meta-claimstash %q: %v", o.Metadata["claimstash"], err)
				}
				if attrs.Digest != st.Address.Digest || attrs.Size != int64(len(c.data)) || attrs.StoredSize != st.StoredSize ||
					attrs.Metadata["case"] != c.name || attrs.Metadata["team"] != "interop" || attrs.ContentType != "application/x-"+c.name ||
					attrs.Encoding != st.Encoding {
					t.Errorf("x-amz-meta-claimstash: %+v", attrs)
				}
				if c.multipart {
					if want := compositeCRC32C(raw, partSize); o.ChecksumCRC32C != want {
						t.Errorf("multipart object's checksum: CRC32C %q (type %q), want the composite CRC32C of its parts %q", o.ChecksumCRC32C, o.ChecksumType, want)
					}
					if o.ChecksumType != "" && o.ChecksumType != "COMPOSITE" {
						t.Errorf("multipart object's checksum type %q, want COMPOSITE", o.ChecksumType)
					}
				} else {
					if o.ChecksumSHA256 != b64SHA(raw) {
						t.Errorf("single-part object's x-amz-checksum-sha256 %q, want the SHA-256 of its bytes %q", o.ChecksumSHA256, b64SHA(raw))
					}
					if c.comp == stash.CompressionNone && o.ChecksumSHA256 != b64SHA(c.data) {
						t.Errorf("a stash stored as given: checksum %q is not its digest", o.ChecksumSHA256)
					}
				}
			}
		})
	}
}

// TestAWSCLIUploadsRead: what a user uploads with `aws s3 cp` under the
// documented layout, single-part and multipart, scoped and not, is read by
// the engine (Retrieve, Open, Stat) and verified; an upload under the wrong
// digest, or truncated, or zstd bytes labelled Content-Encoding: zstd (other
// tools' objects are read as stored), is stash.ErrIntegrity, and nothing of
// it is returned.
func TestAWSCLIUploadsRead(t *testing.T) {
	e, _, srv, bucket := awsEngine(t)
	aws := newAWSCLI(t, srv)
	ctx := context.Background()
	dir := t.TempDir()
	upload := func(key string, data []byte, extra ...string) string {
		t.Helper()
		f := filepath.Join(dir, strings.ReplaceAll(key, "/", "_"))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		aws.run(append([]string{"s3", "cp", "--only-show-errors", f, "s3://" + bucket + "/" + key}, extra...)...)
		return "s3://" + bucket + "/" + key
	}

	small := payload(70<<10, 31)
	big := payload(9<<20+17, 32) // over the CLI's 8 MiB multipart threshold: two parts
	scoped := []byte("a report a user put by hand\n")
	for _, c := range []struct {
		name string
		addr string
		data []byte
	}{
		{"single", upload("by-hand."+hexSHA(small), small, "--content-type", "application/octet-stream"), small},
		{"multipart", upload("by-hand-big."+hexSHA(big), big, "--checksum-algorithm", "SHA256"), big},
		{"scoped", upload("org=42/project=7/report.txt."+hexSHA(scoped), scoped, "--checksum-algorithm", "CRC32"), scoped},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.Retrieve(ctx, c.addr)
			if err != nil || !bytes.Equal(got.Data, c.data) {
				t.Fatalf("Retrieve %s: %v", c.addr, err)
			}
			st, err := e.Stat(ctx, c.addr)
			if err != nil || st.Size != int64(len(c.data)) {
				t.Fatalf("Stat %s: %+v, %v", c.addr, st, err)
			}
			r, err := e.Open(ctx, c.addr)
			if err != nil {
				t.Fatalf("Open %s: %v", c.addr, err)
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(r)
			r.Close()
			if err != nil || !bytes.Equal(buf.Bytes(), c.data) {
				t.Fatalf("Open %s read: %v", c.addr, err)
			}
		})
	}

	bad := payload(2<<20, 33)
	text := halfRandom(200<<10, 34)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	packed := enc.EncodeAll(text, nil)
	enc.Close()
	for _, c := range []struct {
		name, addr string
	}{
		// Other tools' objects are read as stored: a zstd upload under
		// the digest of what it decompresses to does not match it.
		{"zstd upload", upload("packed."+hexSHA(text), packed, "--content-encoding", "zstd")},
		{"wrong digest", upload("wrong."+hexSHA(small), bad)},
		{"truncated", upload("cut."+hexSHA(bad), bad[:len(bad)-1])},
		{"truncated multipart", upload("cut-big."+hexSHA(big), big[:len(big)-partSize])},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.Retrieve(ctx, c.addr)
			if !errors.Is(err, stash.ErrIntegrity) || got != nil {
				t.Fatalf("Retrieve of an upload %s: %v, %v; want stash.ErrIntegrity and nothing", c.name, got, err)
			}
			r, err := e.Open(ctx, c.addr)
			if err == nil {
				var buf bytes.Buffer
				_, err = buf.ReadFrom(r)
				r.Close()
			}
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Fatalf("Open of an upload %s: got %v, want stash.ErrIntegrity before EOF", c.name, err)
			}
		})
	}
}

// TestAWSCLIPresignedLinks: a share link of an S3 stash is the SigV4
// presigned URL of the object that `aws s3 presign` makes too (same path,
// same signed parameters), plus a fragment naming the stash
// (#stash=<address>&size=…&enc=…) that the engine reads it by. A link
// `aws s3 presign` made is read and verified by the engine once that
// fragment is appended (#stash=<address> suffices), and refused as a plain
// URL without it (stash.ErrInvalidAddress: it names no stash); a tampered
// one is stash.ErrForbidden.
func TestAWSCLIPresignedLinks(t *testing.T) {
	srv := server(t)
	f, err := links.NewFetcher(links.TrustOrigins(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	e, _, _, bucket := awsEngine(t, stash.WithLinkFetcher(f))
	aws := newAWSCLI(t, srv)
	ctx := context.Background()
	p := payload(partSize+5, 41)
	st, err := e.Create(ctx, "linked", p, stash.Compress(stash.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, st.Address.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cli := strings.TrimSpace(string(aws.run("s3", "presign", "--expires-in", "60", "s3://"+bucket+"/"+st.Address.Key())))
	signed, frag, _ := strings.Cut(link, "#")
	if fq, err := url.ParseQuery(frag); err != nil || fq.Get("stash") != st.Address.String() {
		t.Errorf("share link fragment %q does not name %s", frag, st.Address)
	}
	for _, u := range []string{signed, cli} {
		pre, _, _ := strings.Cut(u, "?")
		if pre != srv.Endpoint+"/"+bucket+"/"+st.Address.Key() {
			t.Errorf("link %q does not name the object at path /%s/%s", u, bucket, st.Address.Key())
		}
		for _, q := range []string{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Credential=", "X-Amz-Signature=", "X-Amz-Expires=60", "X-Amz-SignedHeaders=host"} {
			if !strings.Contains(u, q) {
				t.Errorf("link %q lacks %s", u, q)
			}
		}
	}
	named := cli + "#stash=" + url.QueryEscape(st.Address.String())
	for _, u := range []string{link, named} {
		got, err := e.Retrieve(ctx, u)
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve of %s: %v", u, err)
		}
	}
	if _, err := e.Retrieve(ctx, cli); !errors.Is(err, stash.ErrInvalidAddress) {
		t.Errorf("Retrieve of a bare aws presign link: %v, want stash.ErrInvalidAddress", err)
	}
	tampered := strings.Replace(named, "X-Amz-Expires=60", "X-Amz-Expires=61", 1)
	if _, err := e.Retrieve(ctx, tampered); !errors.Is(err, stash.ErrForbidden) {
		t.Fatalf("Retrieve of a tampered aws presign link: %v, want stash.ErrForbidden", err)
	}
	other := payload(100, 42)
	wrong := strings.Replace(named, url.QueryEscape(st.Address.Digest), hexSHA(other), 1)
	if _, err := e.Retrieve(ctx, wrong); err == nil {
		t.Fatalf("Retrieve of a link whose fragment names another digest succeeded")
	}
}

// TestAWSCLIBucketLayout: with one bucket and a prefix (WithBucket,
// WithPrefix), a stash is object <prefix><namespace>/[scopes/]name.<sha256>
// of that bucket, as aws sees it, and what aws uploads there is read.
func TestAWSCLIBucketLayout(t *testing.T) {
	srv := server(t)
	bucket := fmt.Sprintf("awscli-one-%d", awsBuckets.Add(1))
	srv.CreateBucket(t, bucket)
	s, err := s3stash.NewConfig(srv.Client(), s3stash.Config{Bucket: bucket, Prefix: "stash/", PartSize: partSize})
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	aws := newAWSCLI(t, srv)
	ctx := context.Background()
	p := payload(64<<10, 111)
	st, err := e.Create(ctx, "invoice", p, stash.InNamespace("orders"), stash.InScopes(stash.Scope{Key: "org", Value: "42"}))
	if err != nil {
		t.Fatal(err)
	}
	key := "stash/orders/org=42/invoice." + hexSHA(p)
	var head awsObject
	aws.runJSON(&head, "s3api", "head-object", "--bucket", bucket, "--key", key, "--checksum-mode", "ENABLED")
	if head.ContentLength != st.StoredSize || head.Metadata[s3stash.DigestMetadataKey] != st.Address.Digest {
		t.Fatalf("aws head-object %s: %+v", key, head)
	}
	f := filepath.Join(t.TempDir(), "up")
	up := payload(10<<10, 112)
	if err := os.WriteFile(f, up, 0o600); err != nil {
		t.Fatal(err)
	}
	aws.run("s3", "cp", "--only-show-errors", f, "s3://"+bucket+"/stash/orders/by-hand."+hexSHA(up))
	got, err := e.Retrieve(ctx, "s3://orders/by-hand."+hexSHA(up))
	if err != nil || !bytes.Equal(got.Data, up) {
		t.Fatalf("Retrieve of an aws upload in the one-bucket layout: %v", err)
	}
}
