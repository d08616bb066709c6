package s3stash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/claimstash/claimstash/stash/driver"
)

// abortTimeout bounds the clean-up of a failed multipart upload, which runs
// even when the caller's context is done.
const abortTimeout = 30 * time.Second

// Put implements driver.Driver. Objects up to the part size take one
// PutObject; larger ones a multipart upload whose parts are read in turn and
// sent Concurrency at a time, so at most Concurrency parts are in memory.
// Every request carries the SHA-256 of its body (S3 refuses bytes that do not
// match it) and the write is conditional (If-None-Match: *): an existing
// object is ErrExists and is left as it is.
func (s *Store) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) error {
	if size < 0 {
		return fmt.Errorf("s3stash: put %s/%s: negative size %d", ns, key, size)
	}
	meta, err := encodeAttrs(attrs)
	if err != nil {
		return err
	}
	ct := contentType(attrs)
	if size > s.opts.PartSize {
		return s.putMultipart(ctx, ns, key, r, size, meta, ct)
	}
	return s.putSingle(ctx, ns, key, r, size, meta, ct)
}

// retryOnNoBucket runs call again after creating the bucket if it failed for
// want of one and Options.CreateBuckets allows creating it.
func (s *Store) retryOnNoBucket(ctx context.Context, bk string, err error, call func() error) error {
	if !s.opts.CreateBuckets || !isNoSuchBucket(err) {
		return err
	}
	if cerr := s.ensureBucket(ctx, bk); cerr != nil {
		return cerr
	}
	return call()
}

func (s *Store) getBuf(n int64) ([]byte, func()) {
	if n == s.opts.PartSize {
		p := s.partPool.Get().(*[]byte)
		return *p, func() { s.partPool.Put(p) }
	}
	if n < s.opts.PartSize {
		p := s.partPool.Get().(*[]byte)
		return (*p)[:n], func() { s.partPool.Put(p) }
	}
	return make([]byte, n), func() {}
}

// readExactly fills buf from r; a short payload is an error.
func readExactly(r io.Reader, buf []byte) error {
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading payload: %w", err)
	}
	return nil
}

// atEOF checks that r has nothing after the size it was announced with.
func atEOF(r io.Reader, size int64) error {
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n > 0 {
		return fmt.Errorf("payload longer than its size %d", size)
	}
	return nil
}

func (s *Store) putSingle(ctx context.Context, ns, key string, r io.Reader, size int64, meta map[string]string, ct string) error {
	bk, k := s.Locate(ns, key)
	buf, release := s.getBuf(size)
	defer release()
	if err := readExactly(r, buf); err != nil {
		return fmt.Errorf("s3stash: put %s/%s: %w", ns, key, err)
	}
	if err := atEOF(r, size); err != nil {
		return fmt.Errorf("s3stash: put %s/%s: %w", ns, key, err)
	}
	sum := sha(buf)
	in := &s3.PutObjectInput{
		Bucket:            aws.String(bk),
		Key:               aws.String(k),
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    b64(sum),
		IfNoneMatch:       aws.String("*"),
		Metadata:          meta,
	}
	if ct != "" {
		in.ContentType = aws.String(ct)
	}
	call := func() error {
		in.Body = bytes.NewReader(buf)
		_, err := s.client.PutObject(ctx, in, withPayloadHash(sum))
		return err
	}
	return wrap("put", ns, key, s.retryOnNoBucket(ctx, bk, call(), call))
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

func (s *Store) putMultipart(parent context.Context, ns, key string, r io.Reader, size int64, meta map[string]string, ct string) error {
	bk, k := s.Locate(ns, key)
	create := &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(bk),
		Key:               aws.String(k),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		Metadata:          meta,
	}
	if ct != "" {
		create.ContentType = aws.String(ct)
	}
	var mu *s3.CreateMultipartUploadOutput
	call := func() (err error) {
		mu, err = s.client.CreateMultipartUpload(parent, create)
		return err
	}
	if err := s.retryOnNoBucket(parent, bk, call(), call); err != nil {
		return wrap("put", ns, key, err)
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
		buf, release := s.getBuf(n)
		if err := readExactly(r, buf); err != nil {
			release()
			cancel(err)
			break
		}
		off += n
		wg.Add(1)
		go func(i int, buf []byte, release func()) {
			defer wg.Done()
			defer func() { release(); free <- struct{}{} }()
			sum := sha(buf)
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:            aws.String(bk),
				Key:               aws.String(k),
				UploadId:          uploadID,
				PartNumber:        aws.Int32(int32(i + 1)),
				Body:              bytes.NewReader(buf),
				ContentLength:     aws.Int64(int64(len(buf))),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
				ChecksumSHA256:    b64(sum),
			}, withPayloadHash(sum))
			if err != nil {
				cancel(fmt.Errorf("part %d: %w", i+1, err))
				return
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256}
		}(i, buf, release)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		abort()
		return wrap("put", ns, key, err)
	}
	if err := atEOF(r, size); err != nil {
		abort()
		return fmt.Errorf("s3stash: put %s/%s: %w", ns, key, err)
	}
	_, err := s.client.CompleteMultipartUpload(parent, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bk),
		Key:             aws.String(k),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     aws.String("*"),
	})
	if err != nil {
		abort()
		return wrap("put", ns, key, err)
	}
	return nil
}
