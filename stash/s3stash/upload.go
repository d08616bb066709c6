package s3stash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/claimstash/claimstash/stash/driver"
)

// abortTimeout bounds the clean-up of a failed multipart upload, which runs
// even when the caller's context is done.
const abortTimeout = 30 * time.Second

// Put implements driver.Driver. Objects up to the part size take one
// PutObject; larger ones a multipart upload whose parts are sent Concurrency
// at a time. A reader that is also an io.ReaderAt and io.Seeker (a
// bytes.Reader, an *os.File) is sent in place, part by part, without a copy;
// any other reader is read into part buffers, at most Concurrency of them.
// Every request carries a checksum of its body, which S3 verifies before it
// stores anything: a PutObject its SHA-256, a part its CRC32C. The write is
// conditional (If-None-Match: *): an existing object is ErrExists and is
// left as it is (WithoutConditionalWrites, a HEAD first finds it). A
// payload stored as given in one PutObject is not hashed again: its digest
// is the SHA-256 of the body, so S3 checks the bytes against the address
// itself, and a payload that does not match its digest is ErrIntegrity,
// with nothing stored.
func (s *Store) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) error {
	if size < 0 {
		return fmt.Errorf("s3stash: put %s/%s: negative size %d", ns, key, size)
	}
	if err := s.checkNamespace(ns); err != nil {
		return err
	}
	meta, err := encodeAttrs(attrs)
	if err != nil {
		return err
	}
	if s.opts.NoConditionalWrites {
		if err := s.absent(ctx, ns, key); err != nil {
			return err
		}
	}
	src, err := s.newSource(r, size)
	if err != nil {
		return fmt.Errorf("s3stash: put %s/%s: %w", ns, key, err)
	}
	ct, ce := contentType(attrs), contentEncoding(attrs)
	var expiration string
	if size > s.opts.PartSize {
		expiration, err = s.putMultipart(ctx, ns, key, src, size, meta, ct, ce)
	} else {
		expiration, err = s.putSingle(ctx, ns, key, src, size, knownSum(attrs, size), meta, ct, ce)
	}
	if err != nil {
		return err
	}
	return s.checkLifecycle(ctx, ns, key, expiration, attrs.ExpiresAt)
}

// exclusivePutMax is the largest payload Create puts without a HEAD first
// (ExclusivePut): up to it, a PutObject refused because the content is
// stored already sends about as much as a HEAD costs in time on a distant
// endpoint, while every new stash saves the HEAD's round trip.
const exclusivePutMax = 1 << 20

// ExclusivePut implements driver.ExclusivePutter: a PutObject carries
// If-None-Match: *, so the engine puts a payload of up to 1 MiB without
// asking with a HEAD first. A bucket that ignores the condition (an old
// S3-compatible store) would then have a second write of the same content
// replace the first, with the same bytes and the second write's
// attributes, its expiry among them: open such a store
// WithoutConditionalWrites, and Put asks with a HEAD itself.
func (s *Store) ExclusivePut(size int64) bool { return size <= exclusivePutMax }

// absent is Put's own check WithoutConditionalWrites: a HEAD, and
// ErrExists for an object already under the key. Two writers of the same
// new content at the same moment may both write it; the bytes are the
// same, and the later write's attributes are kept.
func (s *Store) absent(ctx context.Context, ns, key string) error {
	bk, k := s.Locate(ns, key)
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
	switch {
	case err == nil:
		return fmt.Errorf("%w: s3stash: put: the object exists", driver.ErrExists)
	case isNotFound(err):
		return nil
	}
	return wrap("put", ns, key, err)
}

// ifNoneMatch is the If-None-Match of a write: "*", or none
// WithoutConditionalWrites.
func (s *Store) ifNoneMatch() *string {
	if s.opts.NoConditionalWrites {
		return nil
	}
	return aws.String("*")
}

// explainUnconditional names the likely way out when a store refuses a
// conditional write as a feature it lacks (501 Not Implemented, as S3
// answers a header it does not implement).
func (s *Store) explainUnconditional(err error) error {
	if err == nil || s.opts.NoConditionalWrites || apiCode(err) != "NotImplemented" && httpStatus(err) != http.StatusNotImplemented {
		return err
	}
	return fmt.Errorf("%w (if the store does not implement conditional writes, If-None-Match, open it with conditional_writes=false)", err)
}

// checkLifecycle refuses an object written where a bucket lifecycle rule
// removes it at once (an expiration date already past: S3 and MinIO then
// serve it to no one) or before the stash's own expiry, and deletes it:
// reported as written, it would be a reference to a stash lost before its
// time. expiration is the write's x-amz-expiration answer, which names the
// date and the rule; an object no rule applies to has none.
func (s *Store) checkLifecycle(ctx context.Context, ns, key, expiration string, expiresAt time.Time) error {
	at, rule, ok := parseExpiration(expiration)
	if !ok {
		return nil
	}
	var when string
	switch {
	case !at.After(time.Now()):
		when = fmt.Sprintf("at once (its expiration date, %s, has passed)", at.Format(time.RFC3339))
	case !expiresAt.IsZero() && at.Before(expiresAt):
		when = fmt.Sprintf("at %s, before the stash expires at %s", at.Format(time.RFC3339), expiresAt.UTC().Format(time.RFC3339))
	default:
		return nil
	}
	err := fmt.Errorf("s3stash: put: the bucket's lifecycle rule %q removes the object %s; expire objects later than the longest TTL", rule, when)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	bk, k := s.Locate(ns, key)
	if _, derr := s.client.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: aws.String(bk), Key: aws.String(k)}); derr != nil {
		return fmt.Errorf("%w (deleting the object failed: %v)", err, derr)
	}
	return err
}

// parseExpiration reads an x-amz-expiration value:
// expiry-date="Fri, 23 Dec 2012 00:00:00 GMT", rule-id="rule".
func parseExpiration(v string) (at time.Time, rule string, ok bool) {
	date, ok := quoted(v, "expiry-date=")
	if !ok {
		return time.Time{}, "", false
	}
	at, err := http.ParseTime(date)
	if err != nil {
		return time.Time{}, "", false
	}
	rule, _ = quoted(v, "rule-id=")
	return at, rule, true
}

// quoted returns the quoted value after name in v.
func quoted(v, name string) (string, bool) {
	_, rest, ok := strings.Cut(v, name+`"`)
	if !ok {
		return "", false
	}
	val, _, ok := strings.Cut(rest, `"`)
	return val, ok
}

// knownSum returns the SHA-256 of the stored bytes when the attributes
// already hold it: for a payload stored as given whose digest is a SHA-256
// (64 hex digits; kstash's MD5 addresses have 32). Nil otherwise.
func knownSum(a *driver.Attributes, size int64) []byte {
	if a.Encoding != driver.EncodingIdentity || a.Size != size || len(a.Digest) != 2*sha256.Size {
		return nil
	}
	sum, err := hex.DecodeString(a.Digest)
	if err != nil {
		return nil
	}
	return sum
}

// isChecksumMismatch reports whether S3 refused a body that does not match
// the checksum its request carried (S3 says BadDigest, MinIO
// XAmzContentChecksumMismatch).
func isChecksumMismatch(err error) bool {
	switch apiCode(err) {
	case "BadDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch", "InvalidDigest":
		return true
	}
	return false
}

// retryOnNoBucket runs call again after creating the bucket if it failed for
// want of one and CreateBuckets allows creating it.
func (s *Store) retryOnNoBucket(ctx context.Context, bk string, err error, call func() error) error {
	err = s.explainCutWrite(ctx, bk, err)
	if !s.opts.CreateBuckets || !isNoSuchBucket(err) {
		return err
	}
	if cerr := s.ensureBucket(ctx, bk); cerr != nil {
		return cerr
	}
	return call()
}

// explainCutWrite classifies a write that failed without an answer from
// the server. S3 servers (MinIO among them) may answer a PutObject into a
// missing bucket with 404 before reading the body and then close the
// connection, so the client sees "connection reset" instead of the answer.
// When the bucket is indeed missing, the error is NoSuchBucket, as if the
// answer had arrived.
func (s *Store) explainCutWrite(ctx context.Context, bk string, err error) error {
	if err == nil || apiCode(err) != "" || httpStatus(err) != 0 || ctx.Err() != nil {
		return err
	}
	_, herr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bk)})
	if herr == nil || !isNotFound(herr) {
		return err
	}
	return fmt.Errorf("%w (the connection was cut: %v)", &smithy.GenericAPIError{Code: "NoSuchBucket", Message: "the bucket does not exist"}, err)
}

// explainCutConditional classifies a conditional PutObject that failed
// without an answer from the server. MinIO answers If-None-Match on an
// existing key with 412 once it has started to read the body, and closes
// the connection without reading the rest of it, so a client still
// sending sees "connection reset" instead of the answer (for bodies of a
// few MiB, often: 18 of 60 rewrites of an 8 MiB object on loopback). When
// the object is there, the error is PreconditionFailed (ErrExists), as if
// the answer had arrived: the key is content addressed, so whoever wrote
// it wrote these bytes.
func (s *Store) explainCutConditional(ctx context.Context, bk, k string, err error) error {
	if err == nil || s.opts.NoConditionalWrites || apiCode(err) != "" || httpStatus(err) != 0 || ctx.Err() != nil {
		return err
	}
	if _, herr := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)}); herr != nil {
		return err
	}
	return fmt.Errorf("%w (the connection was cut: %v)", &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "the object exists"}, err)
}

// getBuf returns a buffer of n bytes: a pooled part buffer for part-sized
// requests, a buffer of its own for small or oversized ones.
func (s *Store) getBuf(n int64) ([]byte, func()) {
	if n > s.opts.PartSize/2 && n <= s.opts.PartSize {
		p := s.partPool.Get().(*[]byte)
		return (*p)[:n], func() { s.partPool.Put(p) }
	}
	return make([]byte, n), func() {}
}

// source hands out the parts of a payload, in order, as seekable bodies.
type source interface {
	// part returns the n bytes at off; release frees them once sent.
	part(off, n int64) (body io.ReadSeeker, release func(), err error)
	// done checks that nothing follows the announced size.
	done() error
}

type readerAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

func (s *Store) newSource(r io.Reader, size int64) (source, error) {
	ra, ok := r.(readerAtSeeker)
	if !ok {
		return &bufSource{s: s, r: r, size: size}, nil
	}
	base, err := ra.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	end, err := ra.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	switch n := end - base; {
	case n < size:
		return nil, fmt.Errorf("reading payload: %w: %d bytes, want %d", io.ErrUnexpectedEOF, n, size)
	case n > size:
		return nil, fmt.Errorf("payload longer than its size %d", size)
	}
	return &atSource{ra: ra, base: base}, nil
}

// atSource reads parts in place from a ReaderAt.
type atSource struct {
	ra   io.ReaderAt
	base int64
}

func (a *atSource) part(off, n int64) (io.ReadSeeker, func(), error) {
	return io.NewSectionReader(a.ra, a.base+off, n), func() {}, nil
}

func (a *atSource) done() error { return nil }

// bufSource reads parts in turn from a plain reader into pooled buffers.
type bufSource struct {
	s    *Store
	r    io.Reader
	size int64
}

func (b *bufSource) part(_, n int64) (io.ReadSeeker, func(), error) {
	buf, release := b.s.getBuf(n)
	if _, err := io.ReadFull(b.r, buf); err != nil {
		release()
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, fmt.Errorf("reading payload: %w", err)
	}
	return bytes.NewReader(buf), release, nil
}

func (b *bufSource) done() error {
	var one [1]byte
	if n, _ := io.ReadFull(b.r, one[:]); n > 0 {
		return fmt.Errorf("payload longer than its size %d", b.size)
	}
	return nil
}

// hashBody returns the SHA-256 of body and rewinds it.
func hashBody(body io.ReadSeeker) ([]byte, error) { return sumBody(body, sha256.New()) }

// castagnoli is the CRC32C table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crcBody returns the CRC32C of body (big-endian, as S3 wants it) and
// rewinds it.
func crcBody(body io.ReadSeeker) ([]byte, error) { return sumBody(body, crc32.New(castagnoli)) }

func sumBody(body io.ReadSeeker, h hash.Hash) ([]byte, error) {
	if _, err := io.Copy(h, body); err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading payload: %w", err)
	}
	return h.Sum(nil), nil
}

// putSingle sends the payload in one PutObject. sum is its SHA-256 when the
// caller knows it already (see knownSum); otherwise putSingle hashes the
// body first.
func (s *Store) putSingle(ctx context.Context, ns, key string, src source, size int64, sum []byte, meta map[string]string, ct, ce string) (expiration string, _ error) {
	bk, k := s.Locate(ns, key)
	body, release, err := src.part(0, size)
	if err == nil {
		defer release()
		err = src.done()
	}
	known := sum != nil
	if err == nil && !known {
		sum, err = hashBody(body)
	}
	if err != nil {
		return "", fmt.Errorf("s3stash: put %s/%s: %w", ns, key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:            aws.String(bk),
		Key:               aws.String(k),
		Body:              body,
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    b64(sum),
		IfNoneMatch:       s.ifNoneMatch(),
		Metadata:          meta,
	}
	if ct != "" {
		in.ContentType = aws.String(ct)
	}
	if ce != "" {
		in.ContentEncoding = aws.String(ce)
	}
	call := func() error {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return err
		}
		out, err := s.client.PutObject(ctx, in, checksummed)
		if err == nil {
			expiration = aws.ToString(out.Expiration)
		}
		return err
	}
	err = s.retryOnNoBucket(ctx, bk, call(), call)
	err = s.explainUnconditional(s.explainCutConditional(ctx, bk, k, err))
	if known && isChecksumMismatch(err) {
		// The engine names the address, as for wrap's errors.
		return "", fmt.Errorf("%w: s3stash: put: the payload does not match its digest: %w", driver.ErrIntegrity, err)
	}
	return expiration, wrap("put", ns, key, err)
}

// partSizeFor grows the part size for objects that would need more than
// S3's 10,000 parts, in whole MiB.
func (s *Store) partSizeFor(size int64) int64 {
	ps := s.opts.PartSize
	if (size+ps-1)/ps <= maxParts {
		return ps
	}
	ps = (size + maxParts - 1) / maxParts
	return (ps + 1<<20 - 1) &^ (1<<20 - 1)
}

func (s *Store) putMultipart(parent context.Context, ns, key string, src source, size int64, meta map[string]string, ct, ce string) (string, error) {
	bk, k := s.Locate(ns, key)
	create := &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(bk),
		Key:               aws.String(k),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		Metadata:          meta,
	}
	if ct != "" {
		create.ContentType = aws.String(ct)
	}
	if ce != "" {
		create.ContentEncoding = aws.String(ce)
	}
	var mu *s3.CreateMultipartUploadOutput
	call := func() (err error) {
		mu, err = s.client.CreateMultipartUpload(parent, create)
		return err
	}
	if err := s.retryOnNoBucket(parent, bk, call(), call); err != nil {
		return "", wrap("put", ns, key, err)
	}
	uploadID := mu.UploadId
	abort := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), abortTimeout)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bk), Key: aws.String(k), UploadId: uploadID})
	}

	partSize := s.partSizeFor(size)
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, nparts)

	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	// free holds the part buffers: at most Concurrency exist at a time.
	free := make(chan struct{}, s.opts.Concurrency)
	for range s.opts.Concurrency {
		free <- struct{}{}
	}
	var wg sync.WaitGroup
	off := int64(0)
	for i := 0; i < nparts && ctx.Err() == nil; i++ {
		select {
		case <-free:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		n := min(partSize, size-off)
		body, release, err := src.part(off, n)
		if err != nil {
			cancel(err)
			break
		}
		off += n
		wg.Add(1)
		go func(i int, body io.ReadSeeker, n int64, release func()) {
			defer wg.Done()
			defer func() { release(); free <- struct{}{} }()
			sum, err := crcBody(body)
			if err != nil {
				cancel(err)
				return
			}
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:            aws.String(bk),
				Key:               aws.String(k),
				UploadId:          uploadID,
				PartNumber:        aws.Int32(int32(i + 1)),
				Body:              body,
				ContentLength:     aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
				ChecksumCRC32C:    b64(sum),
			}, checksummed)
			if err != nil {
				cancel(fmt.Errorf("part %d: %w", i+1, err))
				return
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C}
		}(i, body, n, release)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		abort()
		return "", wrap("put", ns, key, err)
	}
	if err := src.done(); err != nil {
		abort()
		return "", fmt.Errorf("s3stash: put %s/%s: %w", ns, key, err)
	}
	out, err := s.client.CompleteMultipartUpload(parent, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bk),
		Key:             aws.String(k),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     s.ifNoneMatch(),
	})
	if err != nil {
		abort()
		return "", wrap("put", ns, key, s.explainUnconditional(err))
	}
	return aws.ToString(out.Expiration), nil
}
