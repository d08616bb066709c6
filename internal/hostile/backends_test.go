// Package hostile_test attacks claimstash from the outside, through its
// public API, over every backend this machine can run: stored objects
// tampered after the write, decompression bombs and lying sizes. Every
// read must fail with a typed error before or instead of handing out bad
// bytes, with an allocation bounded by the bytes received.
package hostile_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/objectstash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.StopShared()
	os.Exit(code)
}

const s3Bucket = "claimstash-hostile"

var s3Prefixes atomic.Int64

// backends returns a driver of every kind this machine runs, over fresh
// storage.
// replacer puts data and attrs in place of what the backend holds under
// ns/key, as someone with write access to the store would.
type replacer func(t *testing.T, ctx context.Context, d driver.Driver, ns, key string, data []byte, a *driver.Attributes) error

// replaceThroughDriver deletes the object and puts the new one through the
// driver.
func replaceThroughDriver(_ *testing.T, ctx context.Context, d driver.Driver, ns, key string, data []byte, a *driver.Attributes) error {
	if err := d.Delete(ctx, ns, key); err != nil {
		return err
	}
	return d.Put(ctx, ns, key, bytes.NewReader(data), int64(len(data)), a)
}

type backend struct {
	name    string
	open    func(t *testing.T) driver.Driver
	replace replacer // nil: replaceThroughDriver
}

func backends() []backend {
	return []backend{
		{name: "mem", open: func(*testing.T) driver.Driver { return memstash.New() }},
		{name: "file", open: func(t *testing.T) driver.Driver {
			s, err := filestash.New(t.TempDir(), filestash.NoSync())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{name: "nats", open: func(t *testing.T) driver.Driver {
			srv := natstest.Start(t)
			s, err := natsstash.New(srv.JetStream(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{name: "s3", replace: replaceOnS3, open: func(t *testing.T) driver.Driver {
			srv := miniotest.Shared(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := srv.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s3Bucket)})
			var owned *types.BucketAlreadyOwnedByYou
			if err != nil && !errors.As(err, &owned) {
				t.Fatalf("creating bucket: %v", err)
			}
			s, err := s3stash.New(srv.Client(), s3stash.WithBucket(s3Bucket),
				s3stash.WithPrefix(fmt.Sprintf("h%d/", s3Prefixes.Add(1))))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{name: "objectstore", open: func(t *testing.T) driver.Driver {
			fs, err := filestash.New(t.TempDir(), filestash.NoSync())
			if err != nil {
				t.Fatal(err)
			}
			svc, err := service.New(fs, service.WithoutAuth())
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(svc)
			t.Cleanup(func() { ts.Close(); fs.Close() })
			s, err := objectstash.New(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
}

// replaceOnS3 rewrites the object with the S3 API itself, keeping its
// metadata but for the attributes: s3stash's own Put sends the digest as a
// checksum, so S3 refuses tampered bytes through it.
func replaceOnS3(t *testing.T, ctx context.Context, d driver.Driver, ns, key string, data []byte, a *driver.Attributes) error {
	srv := miniotest.Shared(t)
	bk, k := d.(*s3stash.Store).Locate(ns, key)
	head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
	if err != nil {
		return err
	}
	attrs, err := json.Marshal(a)
	if err != nil {
		return err
	}
	meta := head.Metadata
	meta["claimstash"] = string(attrs)
	_, err = srv.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bk), Key: aws.String(k), Body: bytes.NewReader(data),
		Metadata: meta, ContentEncoding: head.ContentEncoding, ContentType: head.ContentType,
	})
	return err
}

// rleFrame is a zstd frame of RLE blocks that decodes to n copies of b
// from a few bytes per 128 KiB. fcs, if not negative, is written as the
// frame's content size (true or not).
func rleFrame(n int64, b byte, fcs int64) []byte {
	var f []byte
	f = binary.LittleEndian.AppendUint32(f, 0xFD2FB528)
	if fcs >= 0 {
		f = append(f, 0xC0, 7<<3) // 8-byte content size, window 128 KiB
		f = binary.LittleEndian.AppendUint64(f, uint64(fcs))
	} else {
		f = append(f, 0x00, 7<<3) // no content size, window 128 KiB
	}
	const block = 128 << 10
	for n > 0 {
		m := min(n, block)
		n -= m
		h := uint32(1<<1) | uint32(m)<<3 // RLE
		if n == 0 {
			h |= 1 // last
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16), b)
	}
	return f
}

// rleBlock returns RLE blocks decoding to n copies of b, the last marked.
func rleBlock(n int64, b byte) []byte {
	f := rleFrame(n, b, -1)
	return f[6:] // after the magic and the two header bytes
}

// craftedFrame is a frame with the given header descriptor and window
// bytes, extra header bytes (a dictionary id) and blocks; it sets the
// stored size in a.
func craftedFrame(a *driver.Attributes, descriptor, window byte, extra, blocks []byte) []byte {
	f := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	f = append(f, descriptor, window)
	f = append(f, extra...)
	f = append(f, blocks...)
	a.StoredSize = int64(len(f))
	return f
}

func zstdFrame(p []byte) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	return enc.EncodeAll(p, nil)
}

// skippable is a skippable frame holding p.
func skippable(p []byte) []byte {
	f := binary.LittleEndian.AppendUint32(nil, 0x184D2A50)
	f = binary.LittleEndian.AppendUint32(f, uint32(len(p)))
	return append(f, p...)
}

// tamper is what is put back in place of a stash: new stored bytes and
// new attributes, from the stored ones.
type tamper struct {
	name string
	// zstd says the case applies to compressed stashes (else identity).
	zstd bool
	edit func(stored []byte, a *driver.Attributes) []byte
	// bound is the most a Retrieve may allocate (0: 8 MiB: the largest measured is under 3 MiB, for a payload of 600 KiB).
	bound uint64
	// linkBound is the same through a share link (0: 24 MiB: a link's
	// first buffer may be 8 MiB).
	linkBound uint64
}

// bombSize is what the bombs decode to (64 MiB): eight times the allocation
// bound below, and small enough to stream to its end in seconds under the
// race detector (at 256 MiB, the embedded nats-server, slowed in the same
// process, timed out the stream now and then).
const bombSize = 64 << 20

func tampers() []tamper {
	flip := func(p []byte, i int) []byte { q := bytes.Clone(p); q[i] ^= 0x01; return q }
	both := func(c tamper) []tamper {
		d := c
		d.zstd = true
		d.name += "/zstd"
		c.name += "/identity"
		return []tamper{c, d}
	}
	var ts []tamper
	for _, c := range []tamper{
		{name: "flip-first", edit: func(p []byte, _ *driver.Attributes) []byte { return flip(p, 0) }},
		{name: "flip-middle", edit: func(p []byte, _ *driver.Attributes) []byte { return flip(p, len(p)/2) }},
		{name: "flip-last", edit: func(p []byte, _ *driver.Attributes) []byte { return flip(p, len(p)-1) }},
		{name: "truncated", edit: func(p []byte, a *driver.Attributes) []byte {
			a.StoredSize = int64(len(p) - 1)
			return p[:len(p)-1]
		}},
		{name: "truncated-size-kept", edit: func(p []byte, _ *driver.Attributes) []byte { return p[:len(p)-1] }},
		{name: "truncated-half", edit: func(p []byte, a *driver.Attributes) []byte {
			a.StoredSize = int64(len(p) / 2)
			if a.Encoding == driver.EncodingIdentity {
				a.Size = a.StoredSize
			}
			return p[:len(p)/2]
		}},
		{name: "extended", edit: func(p []byte, a *driver.Attributes) []byte {
			a.StoredSize++
			if a.Encoding == driver.EncodingIdentity {
				a.Size++
			}
			return append(bytes.Clone(p), 'x')
		}},
		{name: "extended-size-kept", edit: func(p []byte, _ *driver.Attributes) []byte { return append(bytes.Clone(p), 'x') }},
		{name: "emptied", edit: func(_ []byte, a *driver.Attributes) []byte {
			a.StoredSize, a.Size = 0, 0
			return nil
		}},
		{name: "digest-attribute-lies", edit: func(p []byte, a *driver.Attributes) []byte {
			a.Digest = "0000000000000000000000000000000000000000000000000000000000000000"
			return p
		}},
		{name: "size-attribute-larger", edit: func(p []byte, a *driver.Attributes) []byte { a.Size++; return p }},
		{name: "size-attribute-smaller", edit: func(p []byte, a *driver.Attributes) []byte { a.Size--; return p }},
		{name: "size-attribute-huge", edit: func(p []byte, a *driver.Attributes) []byte { a.Size = 4 * bombSize; return p }},
		{name: "size-attribute-negative", edit: func(p []byte, a *driver.Attributes) []byte { a.Size = -1; return p }},
		{name: "encoding-unknown", edit: func(p []byte, a *driver.Attributes) []byte { a.Encoding = "gzip"; return p }},
	} {
		ts = append(ts, both(c)...)
	}
	ts = append(ts,
		tamper{name: "encoding-says-identity/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			a.Encoding, a.Size = driver.EncodingIdentity, a.StoredSize
			return p
		}},
		tamper{name: "encoding-says-zstd/identity", edit: func(p []byte, a *driver.Attributes) []byte {
			a.Encoding = driver.EncodingZstd
			return p
		}},
		// Bombs: a few KiB of stored bytes that decode to GiBs.
		tamper{name: "bomb-size-true/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			f := rleFrame(bombSize, 'A', -1)
			a.StoredSize = int64(len(f))
			return f
		}},
		// Through a handler link this one is served decoded: the client
		// receives all bombSize bytes, and its buffer grows as they
		// arrive (by doubling, so the steps add up to under twice what
		// arrived); the handler's allocations, in this process, count too
		// (150 MiB measured in all, 194 MiB under -race).
		tamper{name: "bomb-size-claimed/zstd", zstd: true, linkBound: 4 * bombSize, edit: func(_ []byte, a *driver.Attributes) []byte {
			// The attributes agree with the bomb: only the digest can tell.
			f := rleFrame(bombSize, 'A', bombSize)
			a.StoredSize, a.Size = int64(len(f)), bombSize
			return f
		}},
		tamper{name: "bomb-content-size-lies-small/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			f := rleFrame(bombSize, 'A', 10)
			a.StoredSize = int64(len(f))
			return f
		}},
		tamper{name: "bomb-content-size-lies-huge/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			f := rleFrame(1<<20, 'A', 1<<50)
			a.StoredSize = int64(len(f))
			return f
		}},
		tamper{name: "single-segment-huge-window/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			f := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
			f = append(f, 0xE0) // single segment, 8-byte content size: the window is the content size
			f = binary.LittleEndian.AppendUint64(f, 1<<40)
			f = append(f, 0x03, 0, 0, 'A') // one RLE block of 0 bytes, last
			a.StoredSize = int64(len(f))
			return f
		}},
		tamper{name: "frame-needs-dictionary/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			return craftedFrame(a, 0x01, 0x38, []byte{7}, rleBlock(a.Size, 'A'))
		}},
		tamper{name: "frame-checksum-wrong/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			return craftedFrame(a, 0x04, 0x38, nil, append(rleBlock(a.Size, 'A'), 1, 2, 3, 4))
		}},
		tamper{name: "frame-reserved-bit/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			return craftedFrame(a, 0x08, 0x38, nil, rleBlock(a.Size, 'A'))
		}},
		tamper{name: "frame-window-2GiB/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			return craftedFrame(a, 0x00, 0xF8, nil, rleBlock(a.Size, 'A'))
		}},
		tamper{name: "block-type-reserved/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			return craftedFrame(a, 0x00, 0x38, nil, []byte{1 | 3<<1 | 8<<3, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
		}},
		tamper{name: "block-oversized/zstd", zstd: true, edit: func(_ []byte, a *driver.Attributes) []byte {
			h := uint32(1) | uint32(1<<20)<<3 // raw, last, 1 MiB: over the 128 KiB a block may hold
			return craftedFrame(a, 0x00, 0x38, nil, append([]byte{byte(h), byte(h >> 8), byte(h >> 16)}, make([]byte, 1<<20)...))
		}},
		tamper{name: "second-frame-appended/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			q := append(bytes.Clone(p), zstdFrame([]byte("more"))...)
			a.StoredSize = int64(len(q))
			return q
		}},
		tamper{name: "second-frame-bomb-appended/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			q := append(bytes.Clone(p), rleFrame(bombSize, 'A', -1)...)
			a.StoredSize = int64(len(q))
			return q
		}},
		tamper{name: "skippable-huge-declared/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			q := binary.LittleEndian.AppendUint32(nil, 0x184D2A5F)
			q = binary.LittleEndian.AppendUint32(q, 0xFFFFFFFF)
			q = append(q, p...)
			a.StoredSize = int64(len(q))
			return q
		}},
		tamper{name: "skippable-prefix/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			q := append(skippable([]byte("ignored")), p...)
			a.StoredSize = int64(len(q))
			return q
		}},
		tamper{name: "garbage-frame/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			q := bytes.Repeat([]byte{0xff}, len(p))
			return q
		}},
		tamper{name: "replaced-by-other-valid-frame/zstd", zstd: true, edit: func(p []byte, a *driver.Attributes) []byte {
			q := zstdFrame(bytes.Repeat([]byte("other payload "), int(a.Size)/14+1)[:a.Size])
			a.StoredSize = int64(len(q))
			return q
		}},
	)
	return ts
}

// TestTamperedOnBackend writes a stash through the engine, replaces what
// the backend holds (bytes and attributes) through the driver, and reads
// it back three ways: every read fails with a typed error, hands out no
// bytes as the payload, and allocates at most a bounded amount.
func TestTamperedOnBackend(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			d := be.open(t)
			// Share links: the engine's handler serves HMAC links on a
			// loopback server, and it trusts that server and, for the S3
			// backend's presigned links, MinIO.
			var handler atomic.Pointer[http.Handler]
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
			t.Cleanup(ts.Close)
			signer, err := links.NewHMAC(ts.URL+"/share/", links.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
			if err != nil {
				t.Fatal(err)
			}
			origins := []string{ts.URL}
			if be.name == "s3" {
				origins = append(origins, miniotest.Shared(t).Endpoint)
			}
			fetcher, err := links.NewFetcher(links.TrustOrigins(origins...))
			if err != nil {
				t.Fatal(err)
			}
			e, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1), stash.WithLinkSigner(signer), stash.WithLinkFetcher(fetcher))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			h := links.NewHandler(e, signer, links.WithLogger(slog.New(slog.DiscardHandler)))
			handler.Store(&h)
			ctx := context.Background()
			payloads := map[bool][]byte{
				false: stashtest.RandomPayload(200<<10, 1),
				true:  stashtest.JSONPayload(600<<10, 2), // over the size decoded on a second core
			}
			for i, tc := range tampers() {
				t.Run(tc.name, func(t *testing.T) {
					s, err := e.Create(ctx, fmt.Sprintf("tampered-%d", i), payloads[tc.zstd])
					if err != nil {
						t.Fatal(err)
					}
					ns, key := s.Address.Namespace, s.Address.Key()
					rc, attrs, err := d.Get(ctx, ns, key)
					if err != nil {
						t.Fatal(err)
					}
					stored, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						t.Fatal(err)
					}
					if got := attrs.Encoding == driver.EncodingZstd; got != tc.zstd {
						t.Fatalf("stored with encoding %q, the case wants zstd=%v", attrs.Encoding, tc.zstd)
					}
					a := *attrs
					bad := tc.edit(stored, &a)
					replace := be.replace
					if replace == nil {
						replace = replaceThroughDriver
					}
					if err := replace(t, ctx, d, ns, key, bad, &a); err != nil {
						// A store that refuses the lie at write time holds nothing to read.
						t.Logf("the store refused the tampered object: %v", err)
						return
					}
					checkRefused(t, e, s.String(), payloads[tc.zstd], tc.bound)
					// Through a share link: served by the handler (HMAC)
					// or by the store itself (presigned), and verified by
					// the fetching engine. A link's first buffer may be
					// up to 8 MiB before bytes arrive.
					link, err := e.Share(ctx, s.String(), time.Hour)
					if err != nil {
						typedOrGone(t, "Share", err)
						return
					}
					t.Run("link", func(t *testing.T) {
						// A handler link's server finds the stash bad
						// while it streams it, after its 200, cuts the
						// response short and says why in its trailer
						// (ErrIntegrity at the client); a stash whose
						// encoding it cannot read is answered 404. So
						// for handler links any refusal passes here (the
						// trailer has tests of its own in stash/links);
						// a presigned link's bytes are verified by the
						// client: typed.
						handlerLink := strings.HasPrefix(link, ts.URL)
						checkRefusedAs(t, e, link, payloads[tc.zstd], max(tc.linkBound, 24<<20), handlerLink)
					})
				})
			}
		})
	}
}

// checkRefused reads address with Retrieve and Open and wants each to
// fail with a typed error, never a payload other than want, and Retrieve
// to allocate at most bound (0: 8 MiB).
func checkRefused(t *testing.T, e *stash.Engine, address string, want []byte, bound uint64) {
	t.Helper()
	checkRefusedAs(t, e, address, want, bound, false)
}

// checkRefusedAs is checkRefused; cut says the refusal may be a read cut
// short (any error) rather than a typed one. Either way no bytes but the
// payload come back as the payload, and no error message shows a link's
// signature.
func checkRefusedAs(t *testing.T, e *stash.Engine, address string, want []byte, bound uint64, cut bool) {
	t.Helper()
	typed := func(t *testing.T, what string, err error) {
		t.Helper()
		if msg := err.Error(); strings.Contains(msg, "sig=") || strings.Contains(msg, "X-Amz-Signature") {
			t.Errorf("%s: the error shows the link's signature: %s", what, msg)
		}
		if !cut {
			typedErr(t, what, err)
		}
	}
	ctx := context.Background()
	if bound == 0 {
		bound = 8 << 20
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := e.Retrieve(ctx, address)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
		t.Errorf("Retrieve allocated %d MiB; want at most %d MiB", alloc>>20, bound>>20)
	} else {
		t.Logf("Retrieve allocated %d KiB", alloc>>10)
	}
	switch {
	case err == nil && bytes.Equal(got.Data, want):
		// The tampering did not change what the stash decodes to (a skippable frame).
	case err == nil:
		t.Errorf("Retrieve returned %d bytes that are not the payload, and no error", len(got.Data))
	case got != nil:
		t.Errorf("Retrieve returned a stash with its error %v", err)
	default:
		typed(t, "Retrieve", err)
	}

	r, err := e.Open(ctx, address)
	if err != nil {
		typed(t, "Open", err)
		return
	}
	defer r.Close()
	var buf bytes.Buffer
	limit := int64(len(want)) + 1<<20
	n, err := io.CopyN(&buf, r, limit)
	if n == limit {
		// Bytes before the end are tentative: the end must be an error.
		if _, err = io.Copy(io.Discard, r); err == nil {
			t.Errorf("reading the Open stream reached a clean end after more than %d bytes", limit)
		} else {
			typed(t, "reading the Open stream", err)
		}
		return
	}
	if err == io.EOF {
		err = nil
	}
	switch {
	case err == nil && bytes.Equal(buf.Bytes(), want):
	case err == nil:
		t.Errorf("reading the Open stream reached a clean end after %d bytes that are not the payload", buf.Len())
	default:
		typed(t, "reading the Open stream", err)
	}
}

// typedOrGone wants err to be what a bad stash may give, or ErrNotFound
// (Share of a stash whose attributes no longer hold it).
func typedOrGone(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, stash.ErrNotFound) {
		typedErr(t, what, err)
	}
}

// typedErr wants err to match one of the sentinels a bad stash may give.
func typedErr(t *testing.T, what string, err error) {
	t.Helper()
	for _, s := range []error{stash.ErrIntegrity, stash.ErrTooLarge, stash.ErrUnsupported} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Errorf("%s: %v (%T): want an error matching ErrIntegrity, ErrTooLarge or ErrUnsupported", what, err, err)
}
