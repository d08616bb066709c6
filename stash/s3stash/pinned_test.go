package s3stash_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// TestRangedReadPinned: the ranges of a read after the first are pinned
// with If-Match to the version the first GET read. An object written again
// between the ranges, with what is there now another stash's, fails the
// read early with an error that says the object changed while it was read
// (ErrNotFound: the version read is gone) rather than stitching two
// versions for the digest check. One rewritten as the same stash stored the
// same way (its attributes rewritten, as recording a read for time-to-idle
// does; the same bytes put again, with a new ETag) reads whole.
func TestRangedReadPinned(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	raw := srv.Client()
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	size := 3*partSize + 77
	var seed atomic.Uint64
	newStash := func(name string) (*stash.Stash, []byte) {
		t.Helper()
		p := payload(size, seed.Add(1))
		st, err := e.Create(ctx, name, p, stash.Compress(stash.CompressionNone))
		if err != nil {
			t.Fatal(err)
		}
		return st, p
	}
	object := func(st *stash.Stash) (string, string) { return s.Locate(st.Address.Namespace, st.Address.Key()) }
	// read retrieves st with replace run once, before the first ranged GET
	// after the first, and reports how many ranged GETs it saw.
	read := func(st *stash.Stash, replace func()) (*stash.Stash, int64, error) {
		t.Helper()
		var once sync.Once
		var ranges atomic.Int64
		s3stash.SetRangeHook(s, func(int64) {
			ranges.Add(1)
			if replace != nil {
				once.Do(replace)
			}
		})
		defer s3stash.SetRangeHook(s, nil)
		got, err := e.Retrieve(ctx, st.Address.String())
		return got, ranges.Load(), err
	}

	t.Run("unchanged", func(t *testing.T) {
		st, p := newStash("plain")
		got, ranges, err := read(st, nil)
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve: %v", err)
		}
		if ranges != 3 {
			t.Errorf("%d ranged GETs after the first, want 3", ranges)
		}
	})

	t.Run("replaced by another stash", func(t *testing.T) {
		st, _ := newStash("victim")
		other, _ := newStash("other")
		bk, k := object(st)
		obk, ok := object(other)
		_, ranges, err := read(st, func() {
			_, err := raw.CopyObject(ctx, &s3.CopyObjectInput{
				Bucket: aws.String(bk), Key: aws.String(k), CopySource: aws.String(obk + "/" + ok),
				MetadataDirective: types.MetadataDirectiveCopy,
			})
			if err != nil {
				t.Errorf("replacing the object: %v", err)
			}
		})
		if ranges == 0 {
			t.Fatal("no ranged GET")
		}
		if !errors.Is(err, stash.ErrNotFound) || errors.Is(err, stash.ErrIntegrity) || !strings.Contains(err.Error(), "changed while it was read") {
			t.Fatalf("Retrieve of an object replaced mid-read: %v; want ErrNotFound saying it changed while it was read", err)
		}
		var se *stash.Error
		if !errors.As(err, &se) || se.Op != "retrieve" || strings.Count(err.Error(), "s3stash:") != 1 {
			t.Errorf("error not wrapped once: %v", err)
		}
		// A read after the replacement reads one version: the other's
		// bytes, refused by their digest.
		if _, err := e.Retrieve(ctx, st.Address.String()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve after the replacement: %v, want ErrIntegrity", err)
		}
	})

	t.Run("same object written again", func(t *testing.T) {
		st, p := newStash("again")
		bk, k := object(st)
		head, err := raw.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		got, ranges, err := read(st, func() {
			out, err := raw.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(bk), Key: aws.String(k), Body: bytes.NewReader(p),
				Metadata: head.Metadata, ContentType: head.ContentType,
			})
			if err != nil {
				t.Errorf("writing the object again: %v", err)
			} else if aws.ToString(out.ETag) == aws.ToString(head.ETag) {
				t.Errorf("the object written again kept its ETag %s: nothing to re-pin", aws.ToString(head.ETag))
			}
		})
		if err != nil || ranges == 0 || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve of an object written again with the same bytes (%d ranges): %v", ranges, err)
		}
	})

	t.Run("attributes rewritten", func(t *testing.T) {
		st, p := newStash("touched")
		a, err := s.Stat(ctx, st.Address.Namespace, st.Address.Key())
		if err != nil {
			t.Fatal(err)
		}
		a.TTI, a.LastAccess = time.Hour, time.Now().UTC()
		got, ranges, err := read(st, func() {
			if err := s.UpdateAttributes(ctx, st.Address.Namespace, st.Address.Key(), a); err != nil {
				t.Errorf("UpdateAttributes: %v", err)
			}
		})
		if err != nil || ranges == 0 || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve of an object whose attributes were rewritten mid-read: %v", err)
		}
	})

	t.Run("read for time-to-idle", func(t *testing.T) {
		// The engine records the read (a copy of the object onto itself,
		// which MinIO gives a new ETag) before it hands out the reader;
		// with Concurrency 2 the later ranges are fetched only as it
		// reads, so after the copy.
		ts, _ := newStore(t, s3stash.Config{Concurrency: 2})
		clk := stashtest.NewClock(time.Now())
		te, err := stash.New(stash.WithBackend(ts), stash.WithInlineMax(-1), stash.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		p := payload(size, seed.Add(1))
		st, err := te.Create(ctx, "idle", p, stash.Compress(stash.CompressionNone), stash.TTI(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		got, err := te.Retrieve(ctx, st.Address.String())
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve of a time-to-idle stash: %v", err)
		}
		if a, err := ts.Stat(ctx, st.Address.Namespace, st.Address.Key()); err != nil || !a.LastAccess.Equal(clk.Now().UTC()) {
			t.Fatalf("the read was not recorded: %v, %v", a, err)
		}
	})

	t.Run("bytes changed, attributes kept", func(t *testing.T) {
		// Not another stash by its attributes: the ranges follow the new
		// version, and the digest refuses what they read.
		st, _ := newStash("tampered")
		bk, k := object(st)
		_, _, err := read(st, func() {
			if err := corrupt(ctx, raw, bk, k); err != nil {
				t.Errorf("corrupting: %v", err)
			}
		})
		if !errors.Is(err, stash.ErrIntegrity) {
			t.Fatalf("Retrieve of an object corrupted mid-read: %v, want ErrIntegrity", err)
		}
	})
}

// TestRangedReadObjectDeleted: an object deleted between its ranges is
// ErrNotFound, whatever the store answers a GET conditional on an ETag of
// an object that is gone.
func TestRangedReadObjectDeleted(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{Concurrency: 1})
	ctx := context.Background()
	p := payload(2*partSize+5, 99)
	if err := s.Put(ctx, "ns", "gone."+hexSHA(p), bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "ns", "gone."+hexSHA(p))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, partSize)); err != nil {
		t.Fatal(err)
	}
	// With Concurrency 1 the next range is fetched only once it is read.
	bk, k := s.Locate("ns", "gone."+hexSHA(p))
	if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bk), Key: aws.String(k)}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("reading on after the object was deleted: %v, want ErrNotFound", err)
	}
}
