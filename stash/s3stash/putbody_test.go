package s3stash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// watchedPayload is a payload (an io.ReaderAt and io.Seeker, which s3stash
// sends in place) that records a read once its owner says Put has
// returned.
type watchedPayload struct {
	size                int64
	pos                 int64
	returned, readAfter atomic.Bool
}

func (w *watchedPayload) ReadAt(p []byte, off int64) (int, error) {
	if w.returned.Load() {
		w.readAfter.Store(true)
	}
	if off >= w.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), w.size-off)
	for i := range n {
		p[i] = byte(off + i)
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (w *watchedPayload) Read(p []byte) (int, error) {
	n, err := w.ReadAt(p, w.pos)
	w.pos += int64(n)
	return n, err
}

func (w *watchedPayload) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += w.pos
	case io.SeekEnd:
		off += w.size
	}
	w.pos = off
	return off, nil
}

// TestPutLetsGoOfTheBody: an endpoint that answers a conditional PutObject
// with 412 before it has read the body leaves net/http still writing the
// request body after the SDK has returned. Put must not return until the
// transport has let go of the payload: the engine reuses or frees the bytes
// behind it the moment Put returns.
func TestPutLetsGoOfTheBody(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusPreconditionFailed) // the body is never read
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`)
	}))
	defer ts.Close()
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(ts.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	const size = 64 << 20 // one part, a single PutObject, more than loopback buffers hold
	s, err := s3stash.New(client, s3stash.WithBucket("b"), s3stash.WithPartSize(size))
	if err != nil {
		t.Fatal(err)
	}
	key := "taken." + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for range 3 {
		p := &watchedPayload{size: size}
		err := s.Put(context.Background(), "ns", key, p, size, &driver.Attributes{Size: size, StoredSize: size})
		p.returned.Store(true)
		if !errors.Is(err, driver.ErrExists) {
			t.Logf("Put of a taken key: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		if p.readAfter.Load() {
			t.Fatal("the payload was read after Put returned")
		}
	}
}
