package stash_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// streamed is a remote store whose stored bytes arrive as a connection's
// do: in pieces of uneven size, through a reader that is no io.WriterTo.
// edit changes the stored bytes on the way (a truncated, overlong or
// corrupted answer), and end, when set, is the error the stream ends with
// instead of io.EOF (a connection reset after the last byte, or in the
// middle if edit cut the bytes short).
type streamed struct {
	driver.Driver
	edit func([]byte) []byte
	end  error
	size int64 // if not 0, the size claimed, stored and decoded
	// stall: after its bytes the stream waits for the request's context
	// to end, and fails with its error, as an HTTP body does.
	stall bool
}

func (d streamed) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := d.Driver.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, nil, err
	}
	if d.edit != nil {
		b = d.edit(bytes.Clone(b))
	}
	if d.size != 0 {
		m := *a
		m.Size, m.StoredSize = d.size, d.size
		a = &m
	}
	p := &pieces{b: b, end: d.end}
	if d.stall {
		p.stall = ctx.Done()
		p.ctx = ctx
	}
	return io.NopCloser(p), a, nil
}

// pieces hands out b in pieces of 1 to about 100 KiB, then end (io.EOF if
// nil).
type pieces struct {
	b     []byte
	n     int
	end   error
	stall <-chan struct{}
	ctx   context.Context
}

func (p *pieces) Read(q []byte) (int, error) {
	if len(p.b) == 0 && p.stall != nil {
		<-p.stall
		return 0, p.ctx.Err()
	}
	if len(p.b) == 0 {
		if p.end != nil {
			return 0, p.end
		}
		return 0, io.EOF
	}
	p.n++
	k := min(len(q), len(p.b), 1+(p.n*37813)%(100<<10))
	copy(q, p.b[:k])
	p.b = p.b[k:]
	return k, nil
}

// TestRetrieveFromAStream: Retrieve of a stash whose bytes arrive as a
// stream (hashed while the rest arrives, from 256 KiB) reads back exactly,
// stored as given or zstd, below and above the size up to which the
// recorded size is trusted for the buffer (16 MiB); an answer one byte
// short, one byte long or with one byte changed is ErrIntegrity (the long
// one stored as given ErrTooLarge too), and a connection that fails, in the middle or
// after the last byte, is that failure, never the payload.
func TestRetrieveFromAStream(t *testing.T) {
	ctx := context.Background()
	good, store := memEngine(t)
	reset := errors.New("connection reset")
	for _, c := range []struct {
		name string
		p    []byte
		opts []stash.CreateOption
	}{
		{"small", stashtest.RandomPayload(100<<10, 1), nil},
		{"random-1MiB", stashtest.RandomPayload(1<<20, 2), nil},
		{"random-17MiB", stashtest.RandomPayload(17<<20, 3), nil},
		{"json-1MiB-zstd", stashtest.JSONPayload(1<<20, 4), []stash.CreateOption{stash.Compress(stash.CompressionZstd)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := good.Create(ctx, c.name, c.p, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if c.opts != nil && s.Encoding != driver.EncodingZstd {
				t.Fatalf("stored as %q, want zstd", s.Encoding)
			}
			retrieve := func(d streamed) (*stash.Stash, error) {
				t.Helper()
				d.Driver = store
				return engineOver(t, d).Retrieve(ctx, s.String())
			}
			got, err := retrieve(streamed{})
			if err != nil || !bytes.Equal(got.Data, c.p) {
				t.Fatalf("Retrieve: %v (%d bytes back of %d)", err, lenOf(got), len(c.p))
			}
			mid := int(s.StoredSize / 2)
			long := []error{stash.ErrIntegrity, stash.ErrTooLarge}
			if s.Encoding == driver.EncodingZstd {
				long = long[:1] // a byte after the frame does not decode
			}
			for _, bad := range []struct {
				name string
				d    streamed
				want []error
			}{
				{"short", streamed{edit: func(b []byte) []byte { return b[:len(b)-1] }}, []error{stash.ErrIntegrity}},
				{"long", streamed{edit: func(b []byte) []byte { return append(b, 0) }}, long},
				{"changed", streamed{edit: func(b []byte) []byte { b[mid] ^= 1; return b }}, []error{stash.ErrIntegrity}},
				{"reset-at-end", streamed{end: reset}, []error{reset}},
				{"reset-midway", streamed{edit: func(b []byte) []byte { return b[:mid] }, end: reset}, []error{reset}},
			} {
				got, err := retrieve(bad.d)
				if got != nil || err == nil {
					t.Errorf("%s: Retrieve returned the payload", bad.name)
					continue
				}
				for _, w := range bad.want {
					if !errors.Is(err, w) {
						t.Errorf("%s: Retrieve: %v, want %v", bad.name, err, w)
					}
				}
			}
		})
	}
}

// TestRetrieveFromALyingStream: a stream whose store claims 1 GiB and
// sends 1 MiB is ErrIntegrity, and Retrieve allocates no more than the
// 16 MiB up to which it trusts a recorded size for its buffer, and what
// arrived: never the 1 GiB claimed.
func TestRetrieveFromALyingStream(t *testing.T) {
	good, store := memEngine(t)
	s, err := good.Create(context.Background(), "lying", stashtest.RandomPayload(1<<20, 5))
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := retrieveAllocating(engineOver(t, streamed{Driver: store, size: 1 << 30}), s.String())
	if got != nil || !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Retrieve: %v, want ErrIntegrity", err)
	}
	// The store's own copy (1 MiB), the 16 MiB buffer, and change.
	if n > 24<<20 {
		t.Errorf("Retrieve allocated %d MiB for 1 MiB received", n>>20)
	}
}

// TestRetrieveFromAStalledStream: a Retrieve whose stream stops halfway
// returns once its context ends, with the context's error.
func TestRetrieveFromAStalledStream(t *testing.T) {
	good, store := memEngine(t)
	s, err := good.Create(context.Background(), "stalled", stashtest.RandomPayload(1<<20, 6))
	if err != nil {
		t.Fatal(err)
	}
	e := engineOver(t, streamed{Driver: store, edit: func(b []byte) []byte { return b[:len(b)/2] }, stall: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got, err := e.Retrieve(ctx, s.String())
	if got != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Retrieve: %v, want the context's deadline", err)
	}
}

// engineOver is an engine over d, inline disabled.
func engineOver(t *testing.T, d driver.Driver) *stash.Engine {
	t.Helper()
	e, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// retrieveAllocating is e.Retrieve of address with the bytes it allocated
// (the whole process's, after a collection: run it alone).
func retrieveAllocating(e *stash.Engine, address string) (*stash.Stash, uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := e.Retrieve(context.Background(), address)
	runtime.ReadMemStats(&after)
	return s, after.TotalAlloc - before.TotalAlloc, err
}

func lenOf(s *stash.Stash) int {
	if s == nil {
		return 0
	}
	return len(s.Data)
}
