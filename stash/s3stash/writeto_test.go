package s3stash_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

var errWriteFailed = errors.New("write failed")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	n := f.n
	f.n = 0
	return n, errWriteFailed
}

// TestReaderWriteTo reads an object larger than a part (a streamed first
// range, then ranges fetched in parallel) through io.Copy, which uses the
// reader's WriteTo: into a writer with ReadFrom and one without, after a
// first Read, and into a writer that fails part way, which stops the
// reader with the writer's error. The engine reads it to the same bytes.
func TestReaderWriteTo(t *testing.T) {
	s, _ := newStore(t, s3stash.Config{Concurrency: 2})
	ctx := context.Background()
	p := payload(3*partSize+17, 41)
	key := "wt." + hexSHA(p)
	if err := s.Put(ctx, "ns", key, bytes.NewReader(p), int64(len(p)), attrsFor(p)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	open := func(t *testing.T) io.ReadCloser {
		rc, _, err := s.Get(ctx, "ns", key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if _, ok := rc.(io.WriterTo); !ok {
			t.Fatalf("the reader of a %d-byte object (parts of %d) is no io.WriterTo", len(p), partSize)
		}
		return rc
	}
	t.Run("ReadFrom", func(t *testing.T) {
		rc := open(t)
		defer rc.Close()
		var buf bytes.Buffer
		if n, err := io.Copy(&buf, rc); err != nil || n != int64(len(p)) || !bytes.Equal(buf.Bytes(), p) {
			t.Fatalf("io.Copy into a bytes.Buffer: %d bytes, %v; equal: %v", n, err, bytes.Equal(buf.Bytes(), p))
		}
		if n, err := rc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("Read after the end: %d, %v; want 0, EOF", n, err)
		}
	})
	t.Run("Write", func(t *testing.T) {
		rc := open(t)
		defer rc.Close()
		var buf bytes.Buffer
		if n, err := io.Copy(struct{ io.Writer }{&buf}, rc); err != nil || n != int64(len(p)) || !bytes.Equal(buf.Bytes(), p) {
			t.Fatalf("io.Copy into a plain writer: %d bytes, %v", n, err)
		}
	})
	t.Run("AfterRead", func(t *testing.T) {
		rc := open(t)
		defer rc.Close()
		first := make([]byte, 1000)
		if _, err := io.ReadFull(rc, first); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.Write(first)
		if _, err := io.Copy(&buf, rc); err != nil || !bytes.Equal(buf.Bytes(), p) {
			t.Fatalf("io.Copy after a Read: %v; equal: %v", err, bytes.Equal(buf.Bytes(), p))
		}
	})
	for name, n := range map[string]int{"FailInFirstRange": 1000, "FailInLaterRange": 2*partSize + 5} {
		t.Run(name, func(t *testing.T) {
			rc := open(t)
			defer rc.Close()
			got, err := io.Copy(&failingWriter{n: n}, rc)
			if !errors.Is(err, errWriteFailed) || got != int64(n) {
				t.Fatalf("io.Copy into a writer failing after %d bytes: %d, %v; want %d and its error", n, got, err, n)
			}
			if m, err := rc.Read(make([]byte, 10)); m != 0 || err == nil || err == io.EOF {
				t.Fatalf("Read after a failed write: %d, %v; want an error", m, err)
			}
		})
	}
	t.Run("Engine", func(t *testing.T) {
		e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1))
		if err != nil {
			t.Fatal(err)
		}
		st, err := e.Create(ctx, "wt", p)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		got, err := e.Retrieve(ctx, st.String())
		if err != nil || !bytes.Equal(got.Data, p) {
			t.Fatalf("Retrieve: %v", err)
		}
	})
}
