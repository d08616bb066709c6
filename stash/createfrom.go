package stash

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/claimstash/claimstash/stash/driver"
)

// firstRead is how much CreateFrom reads before it commits to the pooled
// spool buffer: a small payload costs about its own size in allocations.
const firstRead = 64 << 10

// spools pools the spool buffers, of DefaultSpoolMemory bytes. A large
// CreateFrom reads its first DefaultSpoolMemory bytes into one and then uses
// it as the copy buffer. One buffer is kept for good, so that streaming
// large payloads one after another allocates nothing per call.
var spools = newKeptPool(1, func() *[]byte {
	b := make([]byte, DefaultSpoolMemory)
	return &b
})

// CreateFrom is Create for a payload read from r, which it reads to EOF. A
// payload of up to DefaultSpoolMemory bytes is buffered in memory and takes
// the Create path; a larger one is spooled to temporary files (WithTempDir)
// while it is hashed, so memory stays bounded whatever its size. The result
// is the same stash, at the same address, as Create with the same bytes.
// The returned Stash has no Data: the caller already has the payload.
//
// A payload over the engine's WithMaxSize is ErrTooLarge, found without
// reading more than one byte past the limit. Temporary files are removed
// before CreateFrom returns.
func (e *Engine) CreateFrom(ctx context.Context, name string, r io.Reader, opts ...CreateOption) (_ *Stash, err error) {
	if !e.made() {
		return nil, opError("create", name, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpCreate, name)
	s, err := e.createFrom(ctx, name, r, opts)
	defer func() { done(s, err) }()
	if err != nil {
		err = opError("create", errAddr(s, name), err)
		s = nil
		return nil, err
	}
	s.Data = nil
	return s, nil
}

func (e *Engine) createFrom(ctx context.Context, name string, r io.Reader, opts []CreateOption) (*Stash, error) {
	o, err := e.createOpts(opts)
	if err != nil {
		return nil, err
	}
	if err := validName(name); err != nil {
		return nil, err
	}
	// Never read more than one byte past the limit.
	lr := &io.LimitedReader{R: r, N: e.maxSize + 1}
	if e.maxSize >= 1<<62 {
		lr.N = e.maxSize
	}
	small, err := readHead(ctx, lr)
	n := len(small)
	switch {
	case err == io.EOF:
		return e.create(ctx, name, small, opts)
	case err != nil:
		return nil, err
	}
	bp := spools.get()
	defer spools.put(bp)
	buf := *bp
	copy(buf, small)
	m, err := readFull(ctx, lr, buf[n:])
	n += m
	switch {
	case err == io.EOF:
		s, err := e.create(ctx, name, buf[:n], opts)
		if s != nil && s.Address.Data != nil {
			// An inline address must not alias the pooled buffer.
			s.Address.Data = append([]byte(nil), s.Address.Data...)
		}
		return s, err
	case err != nil:
		return nil, err
	}
	return e.createSpooled(ctx, name, &o, opts, lr, buf)
}

// readHead reads up to firstRead bytes, growing its buffer as they come, so
// a small payload costs about its own size. It returns io.EOF if the stream
// ended within them.
func readHead(ctx context.Context, r io.Reader) ([]byte, error) {
	p := make([]byte, 0, 4<<10)
	for {
		n, err := readFull(ctx, r, p[len(p):cap(p)])
		p = p[:len(p)+n]
		if err != nil || cap(p) >= firstRead {
			return p, err
		}
		p = append(p[:cap(p)], make([]byte, cap(p))...)[:len(p)]
	}
}

// readFull reads into p until it is full (nil error), or the stream ends
// (io.EOF, with the count read), or it fails.
func readFull(ctx context.Context, r io.Reader, p []byte) (int, error) {
	n, empty := 0, 0
	for n < len(p) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := r.Read(p[n:])
		if m < 0 || m > len(p)-n {
			return n, fmt.Errorf("reading payload: the reader reported %d bytes read into room for %d", m, len(p)-n)
		}
		n += m
		if err == io.EOF {
			return n, io.EOF
		}
		if m > 0 || err != nil {
			empty = 0
		} else if empty++; empty == maxEmptyReads {
			return n, fmt.Errorf("reading payload: %w", io.ErrNoProgress)
		}
		if err != nil {
			return n, fmt.Errorf("reading payload: %w", err)
		}
	}
	return n, nil
}

// createSpooled handles a payload larger than the spool buffer, whose first
// len(buf) bytes are in buf and the rest still in r.
func (e *Engine) createSpooled(ctx context.Context, name string, o *createOptions, opts []CreateOption, r io.Reader, buf []byte) (*Stash, error) {
	raw, err := e.tempFile("spool")
	if err != nil {
		return nil, err
	}
	defer raw.discard()

	// Decide whether compression is worth trying while the head is in buf.
	try := o.compression == CompressionZstd
	if o.compression == CompressionAuto && int64(len(buf)) >= e.compressFloor {
		try = likelyCompressible(buf)
	}

	h := sha256.New()
	size := int64(0)
	chunk, eof := buf, false
	for len(chunk) > 0 {
		h.Write(chunk)
		if _, err := raw.f.Write(chunk); err != nil {
			return nil, fmt.Errorf("spooling payload: %w", err)
		}
		size += int64(len(chunk))
		if size > e.maxSize {
			return nil, fmt.Errorf("%w: more than the limit of %d bytes", ErrTooLarge, e.maxSize)
		}
		if eof {
			break
		}
		n, err := readFull(ctx, r, buf)
		switch {
		case err == io.EOF:
			eof = true
		case err != nil:
			return nil, err
		}
		chunk = buf[:n]
	}

	if e.inlineMax >= 0 && base64.StdEncoding.EncodedLen(int(min(size, 1<<40))) <= min(e.inlineMax, maxInlineAddress) {
		// An engine configured for huge inline addresses: give the same
		// answer Create would.
		payload := make([]byte, size)
		if _, err := raw.f.ReadAt(payload, 0); err != nil {
			return nil, fmt.Errorf("reading spooled payload: %w", err)
		}
		return e.create(ctx, name, payload, opts)
	}
	var sum [sha256.Size]byte
	var digest [2 * sha256.Size]byte
	encodeHex(digest[:], h.Sum(sum[:0]))
	return e.store(ctx, o, name, size, digest[:], func() (encoded, error) {
		st := encoded{open: func() io.Reader { return io.NewSectionReader(raw.f, 0, size) }, size: size}
		if !try {
			return st, nil
		}
		limit := size - 1 // CompressionZstd: any saving
		if o.compression == CompressionAuto {
			limit = size * 7 / 8 // pays
		}
		z, zsize, err := e.compressFile(raw.f, size, limit, buf)
		switch {
		case errors.Is(err, errNoGain):
			return st, nil
		case err != nil:
			return encoded{}, err
		}
		return encoded{open: func() io.Reader { return io.NewSectionReader(z.f, 0, zsize) }, size: zsize, enc: driver.EncodingZstd, release: z.discard}, nil
	})
}

// errNoGain stops a compression that has already lost.
var errNoGain = errors.New("stash: compression does not pay")

// compressFile compresses the size bytes of src into one zstd frame in a
// new temporary file (a streaming encoder with asynchronous blocks),
// giving up with errNoGain as soon as the output exceeds limit bytes.
func (e *Engine) compressFile(src *os.File, size, limit int64, buf []byte) (*tempFile, int64, error) {
	z, err := e.tempFile("zstd")
	if err != nil {
		return nil, 0, err
	}
	lw := &limitWriter{w: z.f, limit: limit}
	// Not the section-parallel encoder: its section buffers come from a
	// sync.Pool of its own, and whenever that pool is emptied (a GC, or the
	// race detector's dropping) a 64 MiB payload allocates 23 to 28 MiB of
	// them (TestCreateFromBoundedMemory); CreateFrom bounds its memory.
	pool := streamEncoders[0]
	enc := pool.get()
	enc.ResetContentSize(lw, size) // in the header: one-shot readers need it
	_, err = io.CopyBuffer(enc, io.NewSectionReader(src, 0, size), buf)
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	enc.Reset(nil)
	pool.put(enc)
	if err != nil {
		z.discard()
		if errors.Is(err, errNoGain) {
			return nil, 0, errNoGain
		}
		return nil, 0, fmt.Errorf("compressing spooled payload: %w", err)
	}
	return z, lw.n, nil
}

type limitWriter struct {
	w        io.Writer
	n, limit int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.limit {
		return 0, errNoGain
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

type tempFile struct{ f *os.File }

func (e *Engine) tempFile(kind string) (*tempFile, error) {
	dir := e.tempDir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "claimstash-"+kind+"-*")
	if err != nil {
		return nil, fmt.Errorf("spooling payload: %w", err)
	}
	return &tempFile{f: f}, nil
}

// discard closes and removes the file.
func (t *tempFile) discard() {
	_ = t.f.Close()
	_ = os.Remove(t.f.Name())
}
