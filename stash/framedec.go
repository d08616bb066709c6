package stash

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Compressed stashes are independent frames (see frameSize). When Retrieve
// has all the stored bytes in memory (a backend reader that writes them out
// in one piece: memstash's, or a counted read), it decodes the frames on
// GOMAXPROCS goroutines, each frame straight into its place in the result,
// and this goroutine hashes the frames in order as they are done. Anything
// else (one frame, frames but the last without their content size,
// skippable frames,
// sizes that do not add up to the recorded size) is decoded as a stream, as
// before. The bounds hold either way: the result is the recorded size,
// allocated only under the bounds of readAll, and no frame may decode past
// its content size (the decoder stops at the capacity it is given).

// frameDecoder decodes whole frames; DecodeAll is safe for concurrent use.
var frameDecoder = sync.OnceValue(func() *zstd.Decoder {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxDecodeWindow),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic(err)
	}
	return dec
})

// frameSpan is one frame: comp[lo:hi] decodes to n bytes at off.
type frameSpan struct {
	lo, hi int
	off, n int64
}

// splitFrames walks the frames of comp by their headers and block headers.
// It reports false unless comp is at least two frames that each say their
// content size (the last may leave it out: the encoder does for tiny
// inputs; then it is what is left of size), and those add up to size.
func splitFrames(comp []byte, size int64) ([]frameSpan, bool) {
	var spans []frameSpan
	var off int64
	for pos := 0; pos < len(comp); {
		var h zstd.Header
		if err := h.Decode(comp[pos:]); err != nil || h.Skippable || h.DictionaryID != 0 {
			return nil, false
		}
		if h.HasFCS && h.FrameContentSize > uint64(size-off) {
			return nil, false
		}
		end := pos + h.HeaderSize
		for last := false; !last; {
			if end+3 > len(comp) {
				return nil, false
			}
			bh := uint32(comp[end]) | uint32(comp[end+1])<<8 | uint32(comp[end+2])<<16
			last = bh&1 == 1
			n := int(bh >> 3)
			switch (bh >> 1) & 3 {
			case 1: // RLE: one byte stands for n
				n = 1
			case 3:
				return nil, false
			}
			end += 3 + n
		}
		if h.HasCheckSum {
			end += 4
		}
		if end > len(comp) {
			return nil, false
		}
		n := size - off // a frame without its content size: the rest, if it is the last
		if h.HasFCS {
			n = int64(h.FrameContentSize)
		} else if end != len(comp) {
			return nil, false
		}
		spans = append(spans, frameSpan{lo: pos, hi: end, off: off, n: n})
		off += n
		pos = end
	}
	return spans, len(spans) > 1 && off == size
}

// decodeFrames decodes the frames into a new buffer of size bytes, writing
// each to h in order.
func decodeFrames(comp []byte, spans []frameSpan, size int64, h io.Writer) ([]byte, error) {
	d := &frameDecoding{comp: comp, spans: spans, dst: make([]byte, size), errs: make([]error, len(spans))}
	d.done = make(chan int, len(spans))
	if helpers := min(runtime.GOMAXPROCS(0)-1, len(spans)-1); helpers > 0 {
		d.wg.Add(helpers)
		for range helpers {
			go d.help()
		}
	}
	finished := make([]bool, len(spans))
	var err error
	for k, s := range spans {
		if d.next.CompareAndSwap(int64(k), int64(k+1)) {
			d.decode(k)
		} else {
			for !finished[k] {
				finished[<-d.done] = true
			}
		}
		if err = d.errs[k]; err != nil {
			break
		}
		h.Write(d.dst[s.off : s.off+s.n])
	}
	d.stop.Store(true)
	d.wg.Wait()
	if err != nil {
		return nil, err
	}
	return d.dst, nil
}

type frameDecoding struct {
	comp  []byte
	spans []frameSpan
	dst   []byte
	errs  []error
	next  atomic.Int64
	stop  atomic.Bool
	done  chan int // frames the helpers decoded
	wg    sync.WaitGroup
}

func (d *frameDecoding) decode(k int) {
	s := d.spans[k]
	out, err := frameDecoder().DecodeAll(d.comp[s.lo:s.hi], d.dst[s.off:s.off:s.off+s.n])
	if err == nil && int64(len(out)) != s.n {
		err = fmt.Errorf("frame %d decodes to %d bytes, its header says %d", k, len(out), s.n)
	}
	d.errs[k] = err
}

func (d *frameDecoding) help() {
	defer d.wg.Done()
	for !d.stop.Load() {
		k := int(d.next.Add(1) - 1)
		if k >= len(d.spans) {
			return
		}
		d.decode(k)
		d.done <- k
	}
}

// wholeStored collects the stored bytes that a backend reader writes out
// (io.WriterTo) and decodes them as they arrive in one piece, within the
// Write call that lends them; pieces of any other size are copied, up to
// the stored size, and decoded after.
type wholeStored struct {
	r      *Reader
	stored int64
	buf    []byte
	seen   int64
	data   []byte
	err    error
	done   bool
}

func (w *wholeStored) Write(p []byte) (int, error) {
	if w.done || w.seen+int64(len(p)) > w.stored {
		return 0, errMoreStored
	}
	w.seen += int64(len(p))
	if w.buf == nil && int64(len(p)) == w.stored {
		w.data, w.err = w.r.decodeStored(p)
		w.done = true
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

var errMoreStored = fmt.Errorf("%w: more stored bytes than recorded", ErrIntegrity)

// decodeWhole is readAll for compressed bytes from a reader of exactly the
// recorded stored size that writes them out itself.
func (r *Reader) decodeWhole(wt io.WriterTo) ([]byte, error) {
	w := &wholeStored{r: r, stored: r.stash.StoredSize}
	_, err := wt.WriteTo(w)
	switch {
	case err != nil:
		if err != errMoreStored {
			r.sr.err = err
			err = classify(r.sr, err)
		}
		r.err = err
		return nil, err
	case !w.done:
		if w.seen != w.stored {
			r.err = fmt.Errorf("%w: fewer stored bytes than recorded", ErrIntegrity)
			return nil, r.err
		}
		w.data, w.err = r.decodeStored(w.buf)
	}
	return w.data, w.err
}

// decodeStored decodes comp, all of the stored bytes, into the payload and
// verifies it: its frames in parallel where they allow, as a stream
// otherwise.
func (r *Reader) decodeStored(comp []byte) ([]byte, error) {
	if spans, ok := splitFrames(comp, r.size); ok {
		data, err := decodeFrames(comp, spans, r.size, r.h)
		if err != nil {
			r.err = classify(&sourceReader{}, err)
			return nil, r.err
		}
		r.n = r.size
		if r.err = r.finish(); r.err != io.EOF {
			return nil, r.err
		}
		return data, nil
	}
	// As a stream, through the Reader's decoder, from comp.
	r.source.r = bytesReaderOf(comp)
	r.dec.br.Reset(r.sr)
	if err := r.dec.Reset(r.dec.br); err != nil {
		r.err = classify(r.sr, err)
		return nil, r.err
	}
	return readDecoded(r)
}

// bytesReadCloser is stored bytes in memory, read in place.
type bytesReadCloser struct{ bytes.Reader }

func (*bytesReadCloser) Close() error { return nil }

func bytesReaderOf(p []byte) *bytesReadCloser {
	r := &bytesReadCloser{}
	r.Reset(p)
	return r
}
