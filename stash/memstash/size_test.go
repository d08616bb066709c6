package memstash_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
)

// plainReader hides every interface but io.Reader (bytes.Reader's
// io.WriterTo among them), as a network body or a pipe would.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// TestPutLyingSize: a Put whose size is negative, or far more than its
// reader holds, is an error and stores nothing; it never panics and never
// allocates the announced size before the bytes arrive.
func TestPutLyingSize(t *testing.T) {
	ctx := context.Background()
	s := memstash.New()
	const key = "lying.00"
	for _, tc := range []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{"negative/plain", func() io.Reader { return plainReader{strings.NewReader("")} }, -1},
		{"negative/writer-to", func() io.Reader { return bytes.NewReader(nil) }, -1},
		{"negative/owned", func() io.Reader { return driver.NewOwnedBytes(nil) }, -1},
		{"beyond-any-allocation", func() io.Reader { return plainReader{strings.NewReader("ten bytes.")} }, 1 << 62},
		{"huge", func() io.Reader { return plainReader{strings.NewReader("ten bytes.")} }, 256 << 20},
		{"section-beyond-its-file", func() io.Reader { return io.NewSectionReader(tenByteFile(t), 0, 256<<20) }, 256 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := s.Put(ctx, "ns", key, tc.r(), tc.size, &driver.Attributes{Size: tc.size, StoredSize: tc.size})
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("Put of %d bytes announced succeeded", tc.size)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
				t.Errorf("Put of ten bytes announced as %d allocated %d bytes", tc.size, n)
			}
			if _, err := s.Stat(ctx, "ns", key); !errors.Is(err, stash.ErrNotFound) {
				t.Fatalf("Stat after a refused Put: %v, want ErrNotFound", err)
			}
		})
	}
	// A plain reader of the announced size is stored as usual.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
	if err := s.Put(ctx, "ns", key, plainReader{bytes.NewReader(payload)}, int64(len(payload)), &driver.Attributes{}); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Get(ctx, "ns", key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, payload) {
		t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(payload))
	}
}

// tenByteFile is a file of ten bytes, open for reading.
func tenByteFile(t *testing.T) *os.File {
	t.Helper()
	name := filepath.Join(t.TempDir(), "ten")
	if err := os.WriteFile(name, []byte("ten bytes."), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestPutSectionOfFileIsOneBuffer: a section of a file that holds the
// announced size (what the engine's CreateFrom hands a store) is read into
// one buffer of that size, not one that grows as the bytes arrive.
func TestPutSectionOfFileIsOneBuffer(t *testing.T) {
	const size = 16 << 20
	name := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(name, bytes.Repeat([]byte{7}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := memstash.New()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := s.Put(context.Background(), "ns", "k", io.NewSectionReader(f, 0, size), size, &driver.Attributes{Size: size, StoredSize: size}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > size+1<<20 {
		t.Errorf("Put of a %d-byte file section allocated %d bytes, want one buffer of its size", size, n)
	}
}
