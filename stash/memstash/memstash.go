// Package memstash is a process-local, concurrency-safe stash backend that
// keeps everything in memory. Use it in tests and for single-process
// pipelines (a Watermill Go channel, say) where stashes need not outlive the
// process.
//
// URL: "mem://" opens a new, empty store; it takes no parameters.
// Addresses: mem://namespace/name.<digest>.
package memstash

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Scheme is the address and URL scheme of this backend: addresses
// mem://namespace/..., backend URLs mem://...
const Scheme = "mem"

func init() {
	stash.RegisterScheme(Scheme, func(ctx context.Context, u *url.URL) (driver.Driver, error) { return OpenURL(ctx, u) })
}

// OpenURL opens a new, empty store for the URL "mem://"; the engine's
// WithBackendURL calls it for mem:// URLs.
func OpenURL(_ context.Context, u *url.URL) (*Store, error) {
	if u.Scheme != Scheme || u.Host != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("memstash: URL %q: want mem:// with nothing after it", u.Redacted())
	}
	return New(), nil
}

type object struct {
	data  []byte
	attrs driver.Attributes
	// limit is, while Put fills data through Write, the most bytes it
	// takes.
	limit int64
}

// Store is an in-memory backend. The zero value is an empty store, ready to
// use, as is the one New returns.
type Store struct {
	mu      sync.RWMutex
	objects map[objectID]*object
}

var (
	_ driver.Driver  = (*Store)(nil)
	_ driver.Updater = (*Store)(nil)
	_ driver.Lister  = (*Store)(nil)

	_ driver.BytesKeeper        = (*Store)(nil)
	_ driver.Modifier           = (*Store)(nil)
	_ driver.ConditionalDeleter = (*Store)(nil)
)

// New returns an empty store.
func New() *Store { return &Store{objects: map[objectID]*object{}} }

// objectID keys the map: a struct of the two strings, so a lookup builds
// no string.
type objectID struct{ ns, key string }

func id(ns, key string) objectID { return objectID{ns, key} }

func copyAttrs(a *driver.Attributes) *driver.Attributes {
	c := *a
	if a.Metadata != nil {
		c.Metadata = make(map[string]string, len(a.Metadata))
		for k, v := range a.Metadata {
			c.Metadata[k] = v
		}
	}
	return &c
}

// Put implements driver.Driver.
func (s *Store) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("memstash: negative size %d", size)
	}
	// Whether the key is taken is checked once, under the lock that
	// stores: the engine has looked it up (Stat) before it writes, so a
	// check before the copy would only repeat that lookup.
	o := &object{attrs: *copyAttrs(attrs)}
	if ob, ok := r.(*driver.OwnedBytes); ok {
		if data := ob.Owned(); data != nil && int64(len(data)) == size {
			o.data = data
			return s.put(ns, key, o)
		}
	}
	if err := o.fill(r, size); err != nil {
		return err
	}
	return s.put(ns, key, o)
}

// KeepsBytes implements driver.BytesKeeper: Put keeps the bytes of a
// driver.OwnedBytes reader that has not been read from, and no stored
// bytes are ever changed in place (Corrupt replaces them with a copy).
func (*Store) KeepsBytes() bool { return true }

func (s *Store) put(ns, key string, o *object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.objects[id(ns, key)]; exists {
		return driver.ErrExists
	}
	if s.objects == nil {
		s.objects = map[objectID]*object{} // the zero Store
	}
	s.objects[id(ns, key)] = o
	return nil
}

// fill reads exactly size bytes from r into o.data, and then r's end. A
// reader that writes itself out (io.WriterTo: the engine's bytes.Reader) in
// one piece is copied once, into memory that is not zeroed first, with o
// itself as the writer (no collector of its own to allocate).
func (o *object) fill(r io.Reader, size int64) error {
	if wt, ok := r.(io.WriterTo); ok {
		o.limit = size
		_, err := wt.WriteTo(o)
		o.limit = 0
		if err != nil {
			return fmt.Errorf("memstash: reading payload: %w", err)
		}
		if int64(len(o.data)) < size {
			return fmt.Errorf("memstash: reading payload: %w", io.ErrUnexpectedEOF)
		}
	} else {
		if err := o.readFull(r, size); err != nil {
			return fmt.Errorf("memstash: reading payload: %w", err)
		}
		var one [1]byte
		if n, _ := r.Read(one[:]); n > 0 {
			return errLonger(size)
		}
	}
	if o.data == nil {
		o.data = []byte{}
	}
	return nil
}

// firstRead is the most memory fill takes for a plain reader before any
// byte has arrived.
const firstRead = 64 << 10

// readFull reads exactly size bytes from r into o.data. The buffer grows
// with what arrives, doubling up to size: a size announced beyond the
// bytes the reader holds costs at most twice what it held, never the
// announced size.
func (o *object) readFull(r io.Reader, size int64) error {
	start := min(size, firstRead)
	if held, ok := heldBytes(r); ok {
		// The reader holds this much already (the engine's spooled
		// payload, a section of a file): one buffer of what is there.
		start = min(size, max(start, held))
	}
	data := make([]byte, 0, start)
	for int64(len(data)) < size {
		if len(data) == cap(data) {
			data = slices.Grow(data, int(min(int64(len(data)), size-int64(len(data)))))
		}
		n, err := r.Read(data[len(data):min(int64(cap(data)), size)])
		data = data[:len(data)+n]
		if err == io.EOF && int64(len(data)) < size {
			return io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	o.data = data
	return nil
}

// heldBytes reports how many bytes r can still give without waiting for
// any to arrive, where r can tell: a section of a regular file (what the
// engine's CreateFrom hands over) counts only what the file holds, and a
// reader of bytes in memory its length.
func heldBytes(r io.Reader) (int64, bool) {
	switch r := r.(type) {
	case *io.SectionReader:
		outer, off, n := r.Outer()
		f, ok := outer.(*os.File)
		if !ok {
			return 0, false
		}
		pos, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		return max(0, min(n, fi.Size()-off)-pos), true
	case interface{ Len() int }:
		return int64(r.Len()), true
	}
	return 0, false
}

func errLonger(size int64) error { return fmt.Errorf("memstash: payload longer than %d bytes", size) }

// Write collects what an io.WriterTo writes while Put fills o, refusing
// more than o.limit bytes.
func (o *object) Write(p []byte) (int, error) {
	if int64(len(o.data))+int64(len(p)) > o.limit {
		return 0, errLonger(o.limit)
	}
	if o.data == nil && int64(len(p)) == o.limit {
		o.data = bytes.Clone(p)
	} else {
		o.data = append(o.data, p...)
	}
	return len(p), nil
}

// reader is what Get returns: the stored bytes, read in place, and a copy
// of their attributes, in one allocation.
type reader struct {
	bytes.Reader
	attrs driver.Attributes
}

func (*reader) Close() error { return nil }

// Get implements driver.Driver. The reader reads the stored bytes in place.
func (s *Store) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.objects[id(ns, key)]
	if !ok {
		return nil, nil, driver.ErrNotFound
	}
	rd := &reader{attrs: *copyAttrs(&o.attrs)}
	rd.Reset(o.data)
	return rd, &rd.attrs, nil
}

// Stat implements driver.Driver.
func (s *Store) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.objects[id(ns, key)]
	if !ok {
		return nil, driver.ErrNotFound
	}
	return copyAttrs(&o.attrs), nil
}

// Delete implements driver.Driver.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[id(ns, key)]; !ok {
		return driver.ErrNotFound
	}
	delete(s.objects, id(ns, key))
	return nil
}

// UpdateAttributes implements driver.Updater.
func (s *Store) UpdateAttributes(ctx context.Context, ns, key string, attrs *driver.Attributes) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[id(ns, key)]
	if !ok {
		return driver.ErrNotFound
	}
	o.attrs = *copyAttrs(attrs)
	return nil
}

// ModifyAttributes implements driver.Modifier under the store's lock.
func (s *Store) ModifyAttributes(ctx context.Context, ns, key string, fn func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[id(ns, key)]
	if !ok {
		return nil, driver.ErrNotFound
	}
	m := fn(copyAttrs(&o.attrs))
	if m == nil {
		return copyAttrs(&o.attrs), nil
	}
	o.attrs = *copyAttrs(m)
	return copyAttrs(m), nil
}

// DeleteIf implements driver.ConditionalDeleter under the store's lock.
func (s *Store) DeleteIf(ctx context.Context, ns, key string, cond func(*driver.Attributes) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[id(ns, key)]
	if !ok {
		return false, driver.ErrNotFound
	}
	if !cond(copyAttrs(&o.attrs)) {
		return false, nil
	}
	delete(s.objects, id(ns, key))
	return true, nil
}

// List implements driver.Lister, in key order.
func (s *Store) List(ctx context.Context, fn func(ns, key string, attrs *driver.Attributes) error) error {
	s.mu.RLock()
	ids := make([]objectID, 0, len(s.objects))
	for k := range s.objects {
		ids = append(ids, k)
	}
	s.mu.RUnlock()
	// In the order of namespace + "/" + key, as before the map had this key.
	sort.Slice(ids, func(i, j int) bool { return ids[i].ns+"/"+ids[i].key < ids[j].ns+"/"+ids[j].key })
	for _, k := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		ns, key := k.ns, k.key
		a, err := s.Stat(ctx, ns, key)
		if err != nil {
			continue // deleted meanwhile
		}
		if err := fn(ns, key, a); err != nil {
			return err
		}
	}
	return nil
}

// Corrupt flips one bit of the stored bytes at offset (modulo their length),
// for tests of integrity checking. It reports whether the object exists.
func (s *Store) Corrupt(ns, key string, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[id(ns, key)]
	if !ok || len(o.data) == 0 {
		return false
	}
	c := append([]byte(nil), o.data...)
	c[offset%int64(len(c))] ^= 0x01
	o.data = c
	return true
}

// Close implements driver.Driver; the store stays readable.
func (s *Store) Close() error { return nil }

// Scheme implements driver.Driver: it is the package's Scheme.
func (*Store) Scheme() string { return Scheme }
