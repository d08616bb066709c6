package stash

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/klauspost/compress/zstd"
)

const (
	// zstdWindow is the window the encoder uses; the decoder refuses frames
	// that ask for more than maxDecodeWindow, so a hostile frame cannot make
	// it allocate a huge history buffer.
	zstdWindow      = 4 << 20
	maxDecodeWindow = 8 << 20
	// sampleSize is how much of a payload CompressionAuto test-compresses
	// to decide whether zstd pays.
	sampleSize = 64 << 10
)

var encoders = sync.Pool{New: func() any {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderCRC(false)) // the SHA-256 digest covers integrity
	if err != nil {
		panic(err) // options are constant
	}
	return enc
}}

// encodersKept holds a couple of encoders for good: an encoder's history
// costs about 15 MiB to allocate, and sync.Pool misses (after a GC, or on
// another P) would pay it again.
var encodersKept = make(chan *zstd.Encoder, 2)

func getEncoder() *zstd.Encoder {
	select {
	case enc := <-encodersKept:
		return enc
	default:
		return encoders.Get().(*zstd.Encoder)
	}
}

func putEncoder(enc *zstd.Encoder) {
	enc.Reset(nil)
	select {
	case encodersKept <- enc:
	default:
		encoders.Put(enc)
	}
}

var decoders = sync.Pool{New: func() any {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxDecodeWindow))
	if err != nil {
		panic(err)
	}
	return dec
}}

var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pays reports whether zstd output of n bytes pays for an input of m under
// CompressionAuto: it must save at least an eighth.
func pays(n, m int) bool { return n*8 <= m*7 }

// encode returns payload encoded as c and the floor say. A zstd result comes
// from a pooled buffer: release it with putBuffer.
func encode(c Compression, floor int64, payload []byte) ([]byte, driver.Encoding) {
	switch c {
	case CompressionNone:
		return payload, driver.EncodingIdentity
	case CompressionAuto:
		if int64(len(payload)) < floor || len(payload) == 0 {
			return payload, driver.EncodingIdentity
		}
		if len(payload) > 2*sampleSize {
			sample := compressAll(payload[:sampleSize])
			ok := pays(len(sample), sampleSize)
			putBuffer(sample)
			if !ok {
				return payload, driver.EncodingIdentity
			}
		}
	}
	out := compressAll(payload)
	if len(out) >= len(payload) || c == CompressionAuto && !pays(len(out), len(payload)) {
		putBuffer(out)
		return payload, driver.EncodingIdentity
	}
	return out, driver.EncodingZstd
}

func compressAll(src []byte) []byte {
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(len(src)/2 + 64)
	enc := getEncoder()
	enc.Reset(buf)
	_, err := enc.Write(src)
	if err == nil {
		err = enc.Close()
	}
	putEncoder(enc)
	if err != nil {
		panic(fmt.Sprintf("stash: zstd encode to memory: %v", err)) // cannot fail writing to a bytes.Buffer
	}
	return buf.Bytes()
}

// putBuffer returns a buffer from compressAll to the pool.
func putBuffer(b []byte) {
	buf := bytes.NewBuffer(b[:0])
	buffers.Put(buf)
}

// decodingReader wraps the stored bytes in a decoder for their encoding.
// The release func returns pooled resources.
func decodingReader(r *sourceReader, enc driver.Encoding) (io.Reader, func(), error) {
	switch enc {
	case driver.EncodingIdentity:
		return r, func() {}, nil
	case driver.EncodingZstd:
		dec := decoders.Get().(*zstd.Decoder)
		if err := dec.Reset(bufio.NewReaderSize(r, 32<<10)); err != nil {
			decoders.Put(dec)
			return nil, nil, classify(r, err)
		}
		return dec, func() { _ = dec.Reset(nil); decoders.Put(dec) }, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown encoding %q", ErrUnsupported, enc)
}

// boundError is stored bytes that decode to more than their recorded size,
// or that ask the decoder for more memory than any frame the engine writes:
// a possible decompression bomb. It matches ErrTooLarge and, since such bytes
// are not what was stored, ErrIntegrity too.
type boundError string

func (e boundError) Error() string { return "stash: too large: " + string(e) }

func (e boundError) Is(target error) bool { return target == ErrTooLarge || target == ErrIntegrity }

var errOverlong error = boundError("more bytes than the recorded size")

// sourceReader remembers the last error of the backend's reader, so a
// failed decode can be told apart from a failed read.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// classify turns a read failure into the error to report: the backend's own
// error if its reader failed (network, context), ErrTooLarge for frames that
// ask for too much memory, and ErrIntegrity for anything else (a short or
// undecodable stream means the stored bytes are bad).
func classify(src *sourceReader, err error) error {
	switch {
	case src.err != nil:
		return src.err
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return boundError("zstd: " + err.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: fewer bytes than the recorded size", ErrIntegrity)
	}
	return fmt.Errorf("%w: %v", ErrIntegrity, err)
}

func verifySum(h hash.Hash, addr Address) error {
	var buf [64]byte
	sum := h.Sum(buf[:0])
	if !hexEqual(sum, addr.Digest) {
		return fmt.Errorf("%w: content does not match digest %.12s…", ErrIntegrity, addr.Digest)
	}
	return nil
}

func hexEqual(sum []byte, digest string) bool {
	const hexd = "0123456789abcdef"
	if len(digest) != 2*len(sum) {
		return false
	}
	for i, b := range sum {
		if digest[2*i] != hexd[b>>4] || digest[2*i+1] != hexd[b&15] {
			return false
		}
	}
	return true
}

// Reader streams a stash, verifying it as it goes (see Engine.Open).
type Reader struct {
	stash   *Stash
	inline  []byte // the data of an inline address
	src     io.Reader
	sr      *sourceReader
	closer  io.Closer
	release func()
	h       hash.Hash
	addr    Address
	n, size int64
	err     error
}

func newReader(rc io.ReadCloser, a *driver.Attributes, addr Address) (*Reader, error) {
	sr := &sourceReader{r: rc}
	src, release, err := decodingReader(sr, a.Encoding)
	if err != nil {
		return nil, err
	}
	return &Reader{stash: stashFrom(addr, a), src: src, sr: sr, closer: rc, release: release, h: newHash(addr), addr: addr, size: a.Size}, nil
}

func bytesReader(s *Stash) *Reader {
	data := s.Data
	st := *s
	st.Data = nil
	return &Reader{stash: &st, inline: data, src: bytes.NewReader(data), sr: &sourceReader{}, closer: io.NopCloser(nil), release: func() {}, size: int64(len(data))}
}

// Stash describes the stash being read (without Data).
func (r *Reader) Stash() *Stash { return r.stash }

// Size is the payload's length.
func (r *Reader) Size() int64 { return r.size }

// Read reads the payload. At the end it returns io.EOF only if the bytes
// matched the digest; otherwise an error matching ErrIntegrity.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if rem := r.size - r.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // one byte past the end detects overlong streams
	}
	n, err := r.src.Read(p)
	r.n += int64(n)
	if r.n > r.size {
		r.err = errOverlong
		return 0, r.err
	}
	if r.h != nil {
		r.h.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		r.err = r.finish()
		return n, r.err
	case err != nil:
		r.err = classify(r.sr, err)
		return n, r.err
	}
	return n, nil
}

func (r *Reader) finish() error {
	if r.n != r.size {
		return fmt.Errorf("%w: fewer bytes than the recorded size", ErrIntegrity)
	}
	if r.h != nil {
		if err := verifySum(r.h, r.addr); err != nil {
			return err
		}
	}
	return io.EOF
}

// Close releases the reader.
func (r *Reader) Close() error {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	if r.err == nil {
		r.err = errors.New("stash: read after close")
	}
	return r.closer.Close()
}
