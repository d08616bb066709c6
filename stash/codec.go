package stash

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/klauspost/compress/zstd"
)

const (
	// zstdWindow is the window of the encoders of payloads under
	// parallelMin (parallelWindow from there); the decoder refuses frames
	// that ask for more than maxDecodeWindow, so a hostile frame cannot make
	// it allocate a huge history buffer.
	zstdWindow      = 4 << 20
	maxDecodeWindow = 8 << 20
	// sampleSize is the most of a payload CompressionAuto looks at (in
	// four spread-out pieces) to estimate whether zstd pays.
	sampleSize = 4 << 10
	// maxEntropy is the collision entropy (bits per byte, see
	// likelyCompressible) of the sample above which CompressionAuto does
	// not try: random and already compressed data measure 7.78 and more
	// over a 512-byte sample (7.95 over 4 KiB), text and JSON 4 to 6.
	maxEntropy = 7.5
	// quickPiece is how much of each of the four pieces of the sample
	// is counted first (256 bytes in all), and quickEntropy the estimate
	// over them from which the sample is taken as random without counting
	// the rest of it (see likelyCompressible).
	quickPiece   = 64
	quickEntropy = 7.75
)

// encoderLevel was chosen by measurement (BenchmarkEncoderChoice; the
// figures are in BENCHMARKS.md, "Stash engine"): on realistic JSON,
// SpeedDefault stores within 0.05% of SpeedFastest's size and takes 1.2 to
// 1.6 times as long.
const encoderLevel = zstd.SpeedFastest

func newEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(encoderLevel),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderCRC(false)) // the SHA-256 digest covers integrity
	if err != nil {
		panic(err) // options are constant
	}
	return enc
}

// encoders pools the one-shot encoders, keeping one per P for good.
var encoders = newKeptPool(max(2, runtime.GOMAXPROCS(0)), newEncoder)

func getEncoder() *zstd.Encoder { return encoders.get() }

func putEncoder(enc *zstd.Encoder) {
	enc.Reset(nil)
	encoders.put(enc)
}

// decoder is a pooled zstd decoder with the buffered reader it reads
// through.
type decoder struct {
	*zstd.Decoder
	br *bufio.Reader
}

var decoders = sync.Pool{New: func() any {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxDecodeWindow))
	if err != nil {
		panic(err)
	}
	return &decoder{Decoder: dec, br: bufio.NewReaderSize(nil, 32<<10)}
}}

// release returns d (nil: nothing) to the pool.
func (d *decoder) release() {
	if d == nil {
		return
	}
	_ = d.Reset(nil)
	d.br.Reset(nil)
	decoders.Put(d)
}

var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pays reports whether zstd output of n bytes pays for an input of m under
// CompressionAuto: it must save at least an eighth.
func pays(n, m int) bool { return n*8 <= m*7 }

// encode returns payload encoded as c and the floor say. A zstd result comes
// from a pooled buffer: release it with putBuffer. Under CompressionAuto the
// payload is compressed at most once: whether to try is an entropy estimate
// over a sample, never a trial compression.
func encode(c Compression, floor int64, payload []byte) ([]byte, driver.Encoding) {
	if !tryCompress(c, floor, payload) {
		return payload, driver.EncodingIdentity
	}
	return settle(c, payload, compressAll(payload))
}

// tryCompress reports whether encode compresses payload at all.
func tryCompress(c Compression, floor int64, payload []byte) bool {
	switch c {
	case CompressionNone:
		return false
	case CompressionAuto:
		return int64(len(payload)) >= floor && len(payload) > 0 && likelyCompressible(payload)
	}
	return true
}

// settle returns what is to be stored of payload, compressed to out: out
// (zstd) if it pays under c, otherwise payload as given, after releasing
// out.
func settle(c Compression, payload, out []byte) ([]byte, driver.Encoding) {
	if len(out) >= len(payload) || c == CompressionAuto && !pays(len(out), len(payload)) {
		putBuffer(out)
		return payload, driver.EncodingIdentity
	}
	return out, driver.EncodingZstd
}

// likelyCompressible estimates the collision entropy (Rényi entropy of
// order 2, in bits per byte: -log2 of the chance that two bytes drawn from p
// are equal) of p from up to sampleSize bytes (an eighth of p, at least
// 512 bytes) taken in four pieces spread over it (its start, two middles
// and its end, so that a header or a trailer alone does not decide), and
// reports whether it is under maxEntropy.
//
// The collision entropy is never above the Shannon entropy, so whatever an
// order-0 Shannon estimate would try is tried. Unlike the Shannon plug-in
// estimate, which over a sample of n bytes falls short of 8 bits for
// random bytes by about 255/(2n ln 2) (7.3 bits at 512 bytes), its
// estimate (equal pairs over all pairs) is unbiased, so half the sample
// decides as well: over 512 bytes, random payloads measure 7.78 bits and
// more and JSON 4.6 and less (200 seeds each), and the count is one pass
// with no sum over a table.
//
// The count is taken in two steps. The first quickPiece bytes of each
// piece (256 bytes) are counted first; an estimate over them of
// quickEntropy or more ends it: incompressible, without the rest of the
// sample. Otherwise the rest is added to the same counts, and the whole
// sample decides as it would have in one step (the equal pairs of a
// sample do not depend on the order its bytes are counted in). The first
// step alone cannot take JSON (4.6 bits) for random, nor random for
// compressible; random bytes end there (98% of 4 KiB payloads: the
// estimate over 256 bytes spreads by about 0.13 bits), which halves the
// count at 4 KiB and takes 256 bytes instead of 4 KiB from 32 KiB on. What
// it can turn away that the whole sample would have tried is a payload
// whose estimate over its sample is close to maxEntropy, which the
// rule's own noise decides either way (an order-0 coder saves at most 6%
// at 7.5 bits, under what CompressionAuto asks for; see pays).
func likelyCompressible(p []byte) bool {
	var counts [256]uint32
	n := min(len(p), sampleSize, max(len(p)/8, 512))
	if n == len(p) {
		return collides(equalPairs(&counts, p), n)
	}
	piece := n / 4
	first := min(piece, quickPiece)
	var offs [4]int
	var pairs uint64
	for i := range offs {
		offs[i] = (len(p) - piece) * i / 3
		pairs += equalPairs(&counts, p[offs[i]:offs[i]+first])
	}
	if first < piece {
		if !collidesAt(pairs, 4*first, quickCollision) {
			return false
		}
		for _, off := range offs {
			pairs += equalPairs(&counts, p[off+first:off+piece])
		}
	}
	return collides(pairs, 4*piece)
}

// collides reports whether pairs equal pairs among n bytes put their
// collision entropy under maxEntropy.
func collides(pairs uint64, n int) bool { return collidesAt(pairs, n, minCollision) }

// collidesAt reports whether pairs equal pairs among n bytes are more
// than a share at of all pairs: -log2(pairs/all) < -log2(at).
func collidesAt(pairs uint64, n int, at float64) bool {
	all := float64(n) * float64(n-1) / 2
	return float64(pairs) > all*at
}

// minCollision is 2^-maxEntropy: the chance of two equal bytes at the
// entropy threshold; quickCollision is 2^-quickEntropy.
var (
	minCollision   = math.Exp2(-maxEntropy)
	quickCollision = math.Exp2(-quickEntropy)
)

// equalPairs adds the bytes of q to counts and returns how many pairs of
// equal bytes they add (each byte pairs with every equal byte counted
// before it). It is a function of its own, with its sums in registers:
// sums captured by a closure live in memory and chain every byte through a
// store and a load.
func equalPairs(counts *[256]uint32, q []byte) uint64 {
	var a, b uint32
	for len(q) >= 16 {
		// Each byte is loaded as the index it is (shifts of a word held
		// eight indices in registers at once and spilled them), sixteen
		// to a turn: under six instructions a byte.
		_ = q[15]
		a += counts[q[0]]
		counts[q[0]]++
		b += counts[q[1]]
		counts[q[1]]++
		a += counts[q[2]]
		counts[q[2]]++
		b += counts[q[3]]
		counts[q[3]]++
		a += counts[q[4]]
		counts[q[4]]++
		b += counts[q[5]]
		counts[q[5]]++
		a += counts[q[6]]
		counts[q[6]]++
		b += counts[q[7]]
		counts[q[7]]++
		a += counts[q[8]]
		counts[q[8]]++
		b += counts[q[9]]
		counts[q[9]]++
		a += counts[q[10]]
		counts[q[10]]++
		b += counts[q[11]]
		counts[q[11]]++
		a += counts[q[12]]
		counts[q[12]]++
		b += counts[q[13]]
		counts[q[13]]++
		a += counts[q[14]]
		counts[q[14]]++
		b += counts[q[15]]
		counts[q[15]]++
		q = q[16:]
	}
	for _, x := range q {
		a += counts[x]
		counts[x]++
	}
	return uint64(a) + uint64(b)
}

// Every payload is stored as ONE zstd frame, whatever its size: readers
// that stop after the first frame (async-compression's ZstdDecoder without
// multiple_members, python-zstandard's one-shot decompress, zstd-ruby,
// Node's DecompressionStream) would otherwise silently truncate a stash.
// Our own decoder still reads several frames one after another (RFC 8878
// allows them), under the same bounds.
//
// What parallelism one frame allows, by measurement (bench-perfengine
// notes, "after single-frame"; BenchmarkCompressThresholds and
// BenchmarkEncoderChoice, on non-repeating JSON with two cores):
//
//   - under overlapMin, the payload is compressed after the hash, on the
//     calling goroutine, with EncodeAll: handing it to another core costs
//     more than overlapping the hash saves (1.01 to 1.28 times the time at
//     64 and 128 KiB);
//   - from overlapMin, a helper goroutine compresses it through a
//     streaming Encoder with asynchronous blocks while the caller hashes
//     it (0.85 times the time at 256 KiB, 0.8 at 1 MiB), when there is a
//     second P (GOMAXPROCS > 1; otherwise it is compressed after the hash
//     as above, through the same Encoder);
//   - from parallelMin, that Encoder compresses 512 KiB sections of the
//     one frame on GOMAXPROCS goroutines (klauspost's
//     WithConcurrentBlocks; sections are four windows, at least 512 KiB),
//     with a 128 KiB window: 0.6 to 0.7 times the time of hash then
//     EncodeAll from 768 KiB, and 1 to 2% smaller than one 4 MiB-window
//     frame on this JSON. CreateFrom's spooled payloads do not (see
//     compressFile).
const (
	overlapMin  = 256 << 10
	parallelMin = 768 << 10
	// parallelWindow is the window of the section-parallel encoder.
	parallelWindow = 128 << 10
	// feedChunk is how much of a payload a helper hands the encoder at a
	// time; a cancelled compression stops between chunks.
	feedChunk = 1 << 20
)

// streamEncoders pools the streaming encoders of payloads from overlapMin
// (index 0, which CreateFrom uses too) and from parallelMin (index 1). One
// of the first is kept for good (about 9 MiB); none of the second, whose
// section encoders grow with GOMAXPROCS (36 MiB at 16).
var streamEncoders = [2]*keptPool[*zstd.Encoder]{
	newKeptPool(1, func() *zstd.Encoder { return newStreamEncoder(false) }),
	newKeptPool(0, func() *zstd.Encoder { return newStreamEncoder(true) }),
}

func newStreamEncoder(parallel bool) *zstd.Encoder {
	window := zstdWindow
	if parallel {
		window = parallelWindow
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(encoderLevel),
		zstd.WithEncoderConcurrency(max(2, runtime.GOMAXPROCS(0))),
		zstd.WithConcurrentBlocks(parallel),
		zstd.WithWindowSize(window),
		zstd.WithEncoderCRC(false)) // the SHA-256 digest covers integrity
	if err != nil {
		panic(err) // options are constant
	}
	return enc
}

// compressAll compresses src into one frame in a pooled buffer (release it
// with putBuffer): see startCompress.
func compressAll(src []byte) []byte {
	return startCompress(src).finish()
}

// compression is one payload being compressed into one frame, by a helper
// goroutine (see overlapMin) or, when none was started, by finish. The
// caller can do other work meanwhile (hash the payload), then either
// collect the result (finish) or stop it (cancel); both return only when
// nothing touches src any more.
type compression struct {
	src  []byte
	out  []byte
	done chan struct{} // nil: no helper
	stop atomic.Bool
}

// startCompress starts compressing src on a helper goroutine if it is at
// least overlapMin bytes and there is a second P for it.
func startCompress(src []byte) *compression {
	c := &compression{src: src}
	if len(src) >= overlapMin && runtime.GOMAXPROCS(0) > 1 {
		c.done = make(chan struct{})
		go func() {
			defer close(c.done)
			c.out = compressStream(c.src, &c.stop)
		}()
	}
	return c
}

// finish returns the frame, in a pooled buffer.
func (c *compression) finish() []byte {
	if c.done == nil {
		if len(c.src) >= overlapMin {
			return compressStream(c.src, &c.stop)
		}
		enc := getEncoder()
		buf := buffers.Get().(*bytes.Buffer)
		buf.Reset()
		buf.Grow(len(c.src)/2 + 64)
		out := enc.EncodeAll(c.src, buf.AvailableBuffer())
		putEncoder(enc)
		return out
	}
	<-c.done
	return c.out
}

// cancel stops the compression, waits for the helper and releases what it
// made.
func (c *compression) cancel() {
	if c.done == nil {
		return
	}
	c.stop.Store(true)
	<-c.done
	putBuffer(c.out)
}

// compressStream compresses src through a pooled streaming encoder, in
// feedChunk pieces, stopping early (with a useless result) once stop is
// set.
func compressStream(src []byte, stop *atomic.Bool) []byte {
	return compressStreamWith(src, stop, len(src) >= parallelMin)
}

// compressStreamWith is compressStream with the section-parallel encoder
// or not.
func compressStreamWith(src []byte, stop *atomic.Bool, sections bool) []byte {
	pool := streamEncoders[0]
	if sections {
		pool = streamEncoders[1]
	}
	enc := pool.get()
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(len(src)/2 + 64)
	enc.ResetContentSize(buf, int64(len(src))) // in the header: one-shot readers need it
	for off := 0; off < len(src) && !stop.Load(); off += feedChunk {
		_, _ = enc.Write(src[off:min(off+feedChunk, len(src))]) // a bytes.Buffer does not fail
	}
	_ = enc.Close() // the encoder's goroutines are done with src
	enc.Reset(nil)
	pool.put(enc)
	return buf.Bytes()
}

// putBuffer returns a buffer from compressAll to the pool.
func putBuffer(b []byte) {
	buf := bytes.NewBuffer(b[:0])
	buffers.Put(buf)
}

// decodingReader wraps the stored bytes in a decoder for their encoding.
// The decoder, if not nil, is pooled: release it.
func decodingReader(r *sourceReader, enc driver.Encoding) (io.Reader, *decoder, error) {
	switch enc {
	case driver.EncodingIdentity:
		return r, nil, nil
	case driver.EncodingZstd:
		dec := decoders.Get().(*decoder)
		dec.br.Reset(r)
		if err := dec.Reset(dec.br); err != nil {
			dec.release()
			return nil, nil, classify(r, err)
		}
		return dec, dec, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown encoding %q", ErrUnsupported, enc)
}

// Allocation bounds of Retrieve. A recorded size can lie (tampered
// attributes, an edited link fragment), so the buffer a read allocates is
// bounded by the bytes that actually arrive, not by the size claimed:
//
//   - Stored as given, the payload is the stored bytes, whose length the
//     engine checked against the recorded size before the read (a link's:
//     against the Content-Length). A remote server can still claim a size
//     it never sends, so the buffer starts at the recorded size only up to
//     storedReadStart (for a link, linkReadStart) and grows, four times at a
//     time, as bytes arrive. Bytes a store keeps in memory are copied whole.
//   - Compressed up to readRatio times, the buffer is the recorded size:
//     at most readRatio times the stored bytes. Beyond storedReadStart
//     stored bytes from a store that does not keep them in memory, those
//     are read first (into a buffer that grows as they arrive), so that
//     the readRatio times are of bytes that arrived, not of a stored size
//     claimed (Engine.open).
//   - Compressed further, the stored bytes are read into memory and
//     decoded once without keeping the output, to count it; the buffer is
//     allocated only once they are known to decode to exactly the recorded
//     size, and they are decoded into it (Engine.open with whole).
//   - Compressed bytes of unknown length (a link without Content-Length)
//     are read to their end first, into a buffer that grows as they
//     arrive, and then counted as above. (Open's Reader never decodes more
//     than the recorded size plus one byte.)
const (
	// readFloor is the smallest buffer a growing read starts with.
	readFloor = 64 << 10
	// readRatio is the compression ratio up to which a read trusts the
	// recorded size for its buffer.
	readRatio = 16
	// linkReadStart bounds the buffer a link's Retrieve starts with:
	// beyond it, the buffer grows only as the server's bytes arrive.
	linkReadStart = 8 << 20
	// storedReadStart bounds the buffer a Retrieve of stored bytes starts
	// with, whatever size the backend claims for them.
	storedReadStart = 16 << 20
	// readGrowth is how many times larger a growing read's buffer gets
	// when it is full (capped at the recorded size): few copies, and never
	// more than readGrowth times the bytes that arrived.
	readGrowth = 4
)

// beyondRatio reports whether a compressed stash's recorded size is more
// than a read may trust for its buffer: over readRatio times the stored
// bytes, or over startMax.
func beyondRatio(a *driver.Attributes, startMax int64) bool {
	return a.Encoding != driver.EncodingIdentity &&
		(a.Size > startMax || a.StoredSize <= 0 || a.Size > readRatio*min(a.StoredSize, math.MaxInt64/readRatio))
}

// readStored reads exactly the stored bytes of src and then its end, into a
// buffer that starts at most at src.startMax bytes and grows as bytes
// arrive.
func readStored(src *source) ([]byte, error) {
	n := src.attrs.StoredSize
	sr := &sourceReader{r: src.rc}
	p := make([]byte, 0, min(n, src.startMax, storedReadStart))
	for int64(len(p)) < n {
		if len(p) == cap(p) {
			p = grow(p, min(n, max(readFloor, readGrowth*int64(cap(p)))))
		}
		m, err := sr.Read(p[len(p):cap(p)])
		p = p[:len(p)+m]
		if err != nil && (err != io.EOF || int64(len(p)) < n) {
			return nil, classify(sr, err)
		}
	}
	var one [1]byte
	if m, _ := io.ReadFull(sr, one[:]); m > 0 {
		return nil, fmt.Errorf("%w: more stored bytes than recorded", ErrIntegrity)
	}
	if sr.err != nil {
		return nil, sr.err
	}
	return p, nil
}

// readStoredAll reads the stored bytes of src, of unknown length, to their
// end, into a buffer that grows as they arrive; more than limit bytes is
// ErrTooLarge.
func readStoredAll(src *source, limit int64) ([]byte, error) {
	sr := &sourceReader{r: src.rc}
	p := make([]byte, 0, min(readFloor, limit+1))
	for {
		if len(p) == cap(p) {
			p = grow(p, min(limit+1, readGrowth*int64(cap(p))))
		}
		m, err := sr.Read(p[len(p):cap(p)])
		p = p[:len(p)+m]
		switch {
		case int64(len(p)) > limit:
			return nil, fmt.Errorf("%w: more than %d stored bytes", ErrTooLarge, limit)
		case err == io.EOF:
			return p, nil
		case err != nil:
			return nil, classify(sr, err)
		}
	}
}

// decodedSize decodes comp without keeping the output and checks that it
// is exactly the recorded size and matches the address's digest, so that a
// small frame whose attributes claim the size it decodes to (a bomb the
// size check alone would let through) is refused before any buffer of that
// size is allocated.
func decodedSize(comp []byte, a *driver.Attributes, addr Address) error {
	sr := &sourceReader{r: bytes.NewReader(comp)}
	src, dec, err := decodingReader(sr, a.Encoding)
	if err != nil {
		return err
	}
	defer dec.release()
	h := newHash(addr)
	defer putHash(h)
	n, err := io.CopyN(h, src, a.Size)
	if err != nil {
		if n < a.Size && err == io.EOF {
			return fmt.Errorf("%w: stored bytes decode to %d bytes, the recorded size is %d", ErrIntegrity, n, a.Size)
		}
		return classify(sr, err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(src, one[:]); m > 0 {
		return errOverlong
	}
	var sum [64]byte
	return verifySum(h, addr, &sum)
}

// readAll reads r to its verified end into a buffer sized by the bounds
// above.
func readAll(r *Reader) ([]byte, error) {
	a := &r.stash
	if r.counted && r.h != nil {
		// The counting pass hashed these very bytes (held in memory,
		// decoded again the same way) and checked the digest: hashing
		// them twice would only double the cost.
		putHash(r.h)
		r.h = nil
	}
	ahead := !sequentialReads.Load() && r.h != nil && r.n == 0 && r.err == nil && r.size >= overlapMin && runtime.GOMAXPROCS(0) > 1
	switch {
	case a.Encoding == driver.EncodingIdentity:
		if wt, ok := r.sr.r.(io.WriterTo); ok && r.src == io.Reader(r.sr) && r.n == 0 && r.err == nil {
			return r.writeAll(wt)
		}
		if ahead {
			return r.readAhead(min(r.size, r.startMax, storedReadStart))
		}
	case a.Encoding == driver.EncodingZstd && r.dec != nil && ahead &&
		(r.counted || !beyondRatio(&driver.Attributes{Size: r.size, StoredSize: a.StoredSize, Encoding: a.Encoding}, r.startMax)):
		return r.readAhead(r.size)
	}
	return readDecoded(r)
}

// sequentialReads turns readAhead off: BenchmarkStreamAhead's other side.
var sequentialReads atomic.Bool

// aheadStep is the most a readAhead helper reads before it hands the bytes
// to the hashing goroutine.
const aheadStep = 128 << 10

// readAhead is readDecoded, of at least overlapMin bytes, with the hash
// beside the read: a helper goroutine reads r.src (the backend's stream,
// or the one zstd stream decoded from it: a frame cannot be split) into the
// buffer while this one hashes what has arrived, so that hashing a stash
// overlaps waiting on the network for it, or decoding it. The buffer starts
// at start bytes (the recorded size only where readDecoded's would) and
// grows as bytes arrive, as readDecoded's does; the helper never reads more
// than the recorded size plus one byte (which is an error).
func (r *Reader) readAhead(start int64) ([]byte, error) {
	size := r.size
	// arrived is the buffer so far. It grows by replacement, and the prefix
	// hashed already is the same in every one.
	type arrived struct{ data []byte }
	progress := make(chan arrived, 8)
	var herr error
	go func() {
		defer close(progress)
		data := make([]byte, 0, start)
		sent := 0
		for int64(len(data)) < size {
			if len(data) == cap(data) {
				data = grow(data, min(size, max(readFloor, readGrowth*int64(cap(data)))))
			}
			m, err := r.src.Read(data[len(data):min(cap(data), len(data)+aheadStep)])
			data = data[:len(data)+m]
			if len(data)-sent >= aheadStep || err != nil && len(data) > sent {
				progress <- arrived{data}
				sent = len(data)
			}
			if err != nil {
				herr = err
				return
			}
		}
		if len(data) > sent {
			progress <- arrived{data}
		}
		var one [1]byte
		if m, err := io.ReadFull(r.src, one[:]); m > 0 {
			herr = errOverlong
		} else if err != io.EOF {
			herr = err
		}
	}()
	var data []byte
	for a := range progress {
		r.h.Write(a.data[len(data):])
		data = a.data
	}
	r.n = int64(len(data))
	switch {
	case herr == errOverlong:
		r.err = herr
	case herr != nil && herr != io.EOF:
		r.err = classify(r.sr, herr)
	default:
		r.err = r.finish() // fewer bytes than recorded: ErrIntegrity
	}
	if r.err != io.EOF {
		return nil, r.err
	}
	return data, nil
}

// bytesReadCloser is stored bytes in memory, read in place.
type bytesReadCloser struct{ bytes.Reader }

func (*bytesReadCloser) Close() error { return nil }

func bytesReaderOf(p []byte) *bytesReadCloser {
	r := &bytesReadCloser{}
	r.Reset(p)
	return r
}

// readDecoded is readAll through the Reader, into a buffer that is the
// recorded size or grows as bytes arrive (see the bounds above).
func readDecoded(r *Reader) ([]byte, error) {
	a := &r.stash
	size := r.size
	var start int64
	switch {
	case a.Encoding == driver.EncodingIdentity:
		start = min(size, r.startMax, storedReadStart)
	case r.counted || !beyondRatio(&driver.Attributes{Size: size, StoredSize: a.StoredSize, Encoding: a.Encoding}, r.startMax):
		start = size
	default:
		start = min(size, readFloor)
	}
	data := make([]byte, 0, start)
	for int64(len(data)) < size {
		if len(data) == cap(data) {
			data = grow(data, min(size, max(readFloor, readGrowth*int64(cap(data)))))
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil // verified (a short stream is an error, not EOF)
		}
		if err != nil {
			return nil, err
		}
	}
	// The digest is checked at the end of the stream; a longer stream is an
	// error from the Reader.
	var one [1]byte
	for {
		if _, err := r.Read(one[:]); err == io.EOF {
			return data, nil
		} else if err != nil {
			return nil, err
		}
	}
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
	r     io.Reader
	err   error
	empty int // reads in a row that returned neither bytes nor an error
}

// maxEmptyReads is how many reads in a row may return neither bytes nor an
// error before a reader is taken as broken (io.ErrNoProgress, as bufio).
const maxEmptyReads = 100

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n < 0 || n > len(p) {
		// A broken reader: nothing it answered can be trusted.
		s.err = fmt.Errorf("%w: the backend's reader reported %d bytes read into room for %d", ErrIntegrity, n, len(p))
		return 0, s.err
	}
	if n > 0 || err != nil || len(p) == 0 {
		s.empty = 0
	} else if s.empty++; s.empty == maxEmptyReads {
		s.err = fmt.Errorf("%w: the backend's reader returns no bytes: %w", ErrIntegrity, io.ErrNoProgress)
		return 0, s.err
	}
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

func verifySum(h hash.Hash, addr Address, buf *[64]byte) error {
	sum := h.Sum(buf[:0])
	if !hexEqual(sum, addr.Digest) {
		return fmt.Errorf("%w: content does not match digest %.12s…", ErrIntegrity, addr.Digest)
	}
	return nil
}

// sha256s pools SHA-256 states for Readers: one less allocation per read.
var sha256s = sync.Pool{New: func() any { return sha256.New() }}

func newHash(addr Address) hash.Hash {
	if addr.DigestAlgorithm() == DigestMD5 {
		return md5.New()
	}
	return getSHA256()
}

func getSHA256() hash.Hash {
	h := sha256s.Get().(hash.Hash)
	h.Reset()
	return h
}

func putHash(h hash.Hash) {
	if h != nil && h.Size() == sha256.Size {
		sha256s.Put(h)
	}
}

func hexEqual(sum []byte, digest string) bool {
	if len(digest) != 2*len(sum) {
		return false
	}
	for i, b := range sum {
		d := digest[2*i : 2*i+2]
		if uint16(d[0])|uint16(d[1])<<8 != hexPairs[b] {
			return false
		}
	}
	return true
}

// hexPairs holds the two lowercase hex digits of every byte, the first in
// the low half.
var hexPairs = func() (t [256]uint16) {
	const digits = "0123456789abcdef"
	for b := range t {
		t[b] = uint16(digits[b>>4]) | uint16(digits[b&15])<<8
	}
	return t
}()

// encodeHex writes the lowercase hex of sum to dst, which holds
// 2*len(sum) bytes.
func encodeHex(dst []byte, sum []byte) {
	dst = dst[:2*len(sum)]
	for i, b := range sum {
		p := hexPairs[b]
		d := dst[2*i : 2*i+2]
		d[0], d[1] = byte(p), byte(p>>8)
	}
}

// Reader streams a stash, verifying it as it goes (see Engine.Open).
type Reader struct {
	stash    Stash
	inline   []byte // the data of an inline address
	startMax int64  // bounds Retrieve's first buffer (see readAll)
	counted  bool   // the stored bytes are known to decode to the recorded size
	fixed    bool   // the backend's bytes never change (driver.BytesKeeper)
	src      io.Reader
	sr       *sourceReader
	closer   io.Closer
	dec      *decoder // pooled, released by Close
	h        hash.Hash
	addr     Address
	n, size  int64
	err      error
	// mu is held by Read, and by Close while it releases what Read uses;
	// closing marks the Reader closed (the first Close does the work).
	mu      sync.Mutex
	closing atomic.Bool
	// What a read needs, in the Reader's one allocation.
	source sourceReader
	clone  cloner
	sum    [64]byte
}

func newReader(rc io.ReadCloser, a *driver.Attributes, addr Address) (*Reader, error) {
	r := &Reader{closer: rc, addr: addr, size: a.Size}
	r.source.r = rc
	r.sr = &r.source
	src, dec, err := decodingReader(r.sr, a.Encoding)
	if err != nil {
		return nil, err
	}
	r.stash = stashOf(addr, a)
	r.src, r.dec, r.h = src, dec, newHash(addr)
	return r, nil
}

func bytesReader(s *Stash) *Reader {
	r := &Reader{stash: *s, inline: s.Data, src: bytes.NewReader(s.Data), closer: io.NopCloser(nil), size: int64(len(s.Data))}
	r.stash.Data = nil
	r.sr = &r.source
	return r
}

// Stash describes the stash being read (without Data).
func (r *Reader) Stash() *Stash { return &r.stash }

// Size is the payload's length.
func (r *Reader) Size() int64 { return r.size }

// Read reads the payload. At the end it returns io.EOF only if the bytes
// matched the digest; otherwise an error matching ErrIntegrity.
func (r *Reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read(p)
}

// errClosed is a Read on a closed Reader, or one that Close ended.
var errClosed = errors.New("stash: read after close")

func (r *Reader) read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if rem := r.size - r.n; int64(len(p)) > rem+1 {
		p = p[:rem+1] // one byte past the end detects overlong streams
	}
	n, err := r.src.Read(p)
	if r.closing.Load() {
		// Closed under this Read (to unblock it): what the backend
		// answered is not read to a verified end.
		r.err = errClosed
		return 0, r.err
	}
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

// writeAll is readAll for stored bytes that are the payload, from a
// backend reader that writes them out itself (io.WriterTo, as memstash's
// reader over the bytes it holds does): written in one piece of the
// recorded size, they are copied once, by bytes.Clone (memory not zeroed
// first) from a driver.BytesKeeper or under copyAheadMin, otherwise ahead
// into a buffer of that size (see cloneHashed). Pieces of any other size
// go into a buffer that grows as they arrive, so the buffer never exceeds
// the bytes received, nor them the recorded size.
func (r *Reader) writeAll(wt io.WriterTo) ([]byte, error) {
	c := &r.clone
	*c = cloner{size: r.size, start: min(r.size, r.startMax, storedReadStart), h: r.h, fixed: r.fixed}
	_, err := wt.WriteTo(c)
	r.n = int64(len(c.data))
	switch {
	case err == errOverlong:
		r.err = err
	case err != nil:
		r.sr.err = err
		r.err = classify(r.sr, err)
	default:
		if r.h != nil && !c.hashed {
			r.h.Write(c.data)
		}
		r.err = r.finish()
	}
	if r.err != io.EOF {
		return nil, r.err
	}
	if c.data == nil {
		c.data = []byte{}
	}
	return c.data, nil
}

// cloner collects what an io.WriterTo writes, up to size bytes (see
// writeAll). A WriterTo that copies from a reader (os.File's) reaches
// ReadFrom, which reads as readAll would.
type cloner struct {
	data        []byte
	size, start int64
	h           hash.Hash // if not nil, a piece of the whole size is hashed as it is copied
	hashed      bool      // data went into h
	// fixed: the pieces are bytes that nothing changes (a
	// driver.BytesKeeper's), so a piece of the whole size is hashed as it
	// is, while a helper copies it, rather than as it is copied.
	fixed bool
}

func (c *cloner) Write(p []byte) (int, error) {
	if int64(len(c.data))+int64(len(p)) > c.size {
		return 0, errOverlong
	}
	if c.data == nil && int64(len(p)) == c.size {
		switch {
		case c.h != nil && c.fixed:
			c.data, c.hashed = cloneAside(p, func(q []byte) { c.h.Write(q) }), true
		case c.h != nil:
			c.data, c.hashed = cloneHashed(p, c.h), true
		default:
			c.data = bytes.Clone(p)
		}
		return len(p), nil
	}
	if c.data == nil {
		c.data = make([]byte, 0, max(int64(len(p)), c.start))
	}
	if need := len(c.data) + len(p); need > cap(c.data) {
		c.data = grow(c.data, min(c.size, max(int64(need), readGrowth*int64(cap(c.data)))))
	}
	c.data = append(c.data, p...)
	return len(p), nil
}

// grow returns b with a capacity of n: one allocation of n bytes (never a
// temporary beside it) and a copy of what b holds.
func grow(b []byte, n int64) []byte {
	g := make([]byte, len(b), n)
	copy(g, b)
	return g
}

func (c *cloner) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for int64(len(c.data)) < c.size {
		if len(c.data) == cap(c.data) {
			c.data = grow(c.data, min(c.size, max(c.start, readFloor, readGrowth*int64(cap(c.data)))))
		}
		n, err := r.Read(c.data[len(c.data):cap(c.data)])
		c.data = c.data[:len(c.data)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil // short: the size check reports it
		}
		if err != nil {
			return total, err
		}
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return total, errOverlong
	}
	return total, nil
}

func (r *Reader) finish() error {
	if r.n != r.size {
		return fmt.Errorf("%w: fewer bytes than the recorded size", ErrIntegrity)
	}
	if r.h != nil {
		if err := verifySum(r.h, r.addr, &r.sum); err != nil {
			return err
		}
	}
	return io.EOF
}

// Close releases the reader. It may be called while a Read waits on the
// backend, to unblock it (that Read then fails), and more than once: only
// the first call does anything.
func (r *Reader) Close() error {
	if r.closing.Swap(true) {
		return nil
	}
	// The backend's reader is closed first, so that a Read blocked in it
	// returns; what that Read uses is released once it has.
	err := r.closer.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dec.release()
	r.dec = nil
	if r.err == nil {
		r.err = errClosed
	}
	putHash(r.h)
	r.h = nil
	// Retrieve's stash lives in the Reader: let go of the source.
	r.closer, r.src, r.sr, r.source, r.clone = closed{}, nil, nil, sourceReader{}, cloner{}
	return err
}

// closed is a Reader's closer once it is closed.
type closed struct{}

func (closed) Close() error { return nil }
