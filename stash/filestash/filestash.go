package filestash

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Names inside the store. Everything the driver creates that is not a
// namespace, a scope or a stash starts with a dot, and no namespace, scope or
// stash name can (the address grammar forbids it), so a temporary entry never
// matches a key the engine can ask for.
const (
	// DataFile is the file holding a stash's stored (encoded) bytes, inside
	// the stash's directory.
	DataFile = "data"
	// AttrsFile is the JSON file holding the stash's driver.Attributes,
	// beside DataFile.
	AttrsFile = "attrs.json"

	tempPrefix    = ".tmp-" // a stash directory being written, or an attribute file
	deletedPrefix = ".del-" // a stash directory being removed

	dirPerm  = 0o700
	filePerm = 0o600

	// StaleAfter is how long a ".tmp-*" directory (an interrupted Put) must
	// have been left untouched before List removes it.
	StaleAfter = 24 * time.Hour

	maxAttrsSize = 1 << 20 // an attribute file larger than this is not ours
	copyBufSize  = 1 << 20
)

// Scheme is the address and URL scheme of this backend: addresses
// file://namespace/..., backend URLs file://...
const Scheme = "file"

func init() {
	stash.RegisterScheme(Scheme, func(ctx context.Context, u *url.URL) (driver.Driver, error) { return OpenURL(ctx, u) })
}

// OpenURL opens a store from a URL of the form
// "file:///abs/dir[?create_dir=true&nosync=true]" (see the package
// documentation); the engine's WithBackendURL calls it for file:// URLs.
func OpenURL(_ context.Context, u *url.URL) (*Store, error) {
	if u.Scheme != Scheme || u.Opaque != "" || u.Host != "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: filestash: URL %q: want file:///absolute/dir (three slashes, no host)", driver.ErrInvalidAddress, u.Redacted())
	}
	var opts []Option
	params, err := driver.URLParams(u)
	if err != nil {
		return nil, fmt.Errorf("%w: filestash: %v", driver.ErrInvalidAddress, err)
	}
	for k, v := range params {
		if k != "create_dir" && k != "nosync" {
			return nil, fmt.Errorf("%w: filestash: URL %q: unknown parameter %q (known: create_dir, nosync)", driver.ErrInvalidAddress, u.Redacted(), k)
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: filestash: URL %q: parameter %q: want true or false", driver.ErrInvalidAddress, u.Redacted(), k)
		}
		switch k {
		case "create_dir":
			if on {
				opts = append(opts, CreateDir())
			}
		case "nosync":
			if on {
				opts = append(opts, NoSync())
			}
		}
	}
	p := u.Path
	if runtime.GOOS == "windows" && len(p) >= 3 && p[0] == '/' && p[2] == ':' {
		p = p[1:] // file:///C:/dir
	}
	p = filepath.FromSlash(p)
	if p == "" || !filepath.IsAbs(p) || filepath.Dir(filepath.Clean(p)) == filepath.Clean(p) {
		return nil, fmt.Errorf("%w: filestash: URL %q: the directory must be an absolute path below the file system root, as in file:///var/lib/claimstash", driver.ErrInvalidAddress, u.Redacted())
	}
	return New(p, opts...)
}

// An Option configures a Store; pass it to New. In a URL each option is a
// query parameter (see the package documentation).
type Option interface {
	apply(*options)
}

type option func(*options)

func (f option) apply(o *options) { f(o) }

type options struct {
	noSync    bool
	createDir bool
}

// CreateDir makes New create the directory (and its parents) if it does not
// exist. Without it, a missing directory is an error, so a typo in a
// configuration does not silently start an empty store. URL: create_dir=true.
func CreateDir() Option { return option(func(o *options) { o.createDir = true }) }

// NoSync skips every fsync. Writes stay atomic for other processes (a reader
// never sees a partial stash), but a power loss or kernel crash may lose or
// truncate recent stashes. For tests and scratch directories only.
// URL: nosync=true.
func NoSync() Option { return option(func(o *options) { o.noSync = true }) }

// Store is a stash backend over a directory. It is safe for concurrent use,
// also by several processes sharing the directory. The zero value is not
// usable; call New.
type Store struct {
	dir   string
	root  *os.Root
	sync  bool
	now   func() time.Time
	locks [64]sync.Mutex // per-key, within this process (see lockKey)

	// durable holds the directories (slash-separated, relative) whose
	// entries up to the store's this Store has fsynced: a Put into one
	// need not fsync them again. At most maxDurable; then it starts over.
	durableMu sync.Mutex
	durable   map[string]struct{}
	onSync    func(dir string) // tests: called for every directory fsynced
}

// maxDurable bounds Store.durable; past it, directories are fsynced again
// once each.
const maxDurable = 4096

var (
	_ driver.Driver  = (*Store)(nil)
	_ driver.Updater = (*Store)(nil)
	_ driver.Lister  = (*Store)(nil)

	_ driver.Modifier           = (*Store)(nil)
	_ driver.ConditionalDeleter = (*Store)(nil)
)

// New opens a store over dir, which must exist unless CreateDir is given. A
// relative dir is made absolute against the working directory now.
func New(dir string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		if opt == nil {
			continue // a nil option is none
		}
		opt.apply(&o)
	}
	if dir == "" {
		return nil, errors.New("filestash: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestash: directory %q: %w", dir, err)
	}
	if o.createDir {
		if err := os.MkdirAll(abs, dirPerm); err != nil {
			return nil, fmt.Errorf("filestash: %w", err)
		}
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		// Never made silently: a typo would start an empty store.
		return nil, fmt.Errorf("filestash: %w (make the directory, or add create_dir=true to the backend URL)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("filestash: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("filestash: %s is not a directory", abs)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("filestash: %w", err)
	}
	return &Store{dir: abs, root: root, sync: !o.noSync, now: time.Now}, nil
}

// Dir is the store's directory, absolute.
func (s *Store) Dir() string { return s.dir }

// Close implements driver.Driver. Operations after Close fail.
func (s *Store) Close() error { return s.root.Close() }

// keyPath validates namespace and key and returns the slash-separated path of
// the stash directory relative to the store and the path of its parent. The
// engine has validated both already; this is defence in depth, so that no
// input can name anything outside the store or any of the driver's own
// files. os.Root enforces the same at every call, symbolic links included.
func keyPath(ns, key string) (rel, parent string, err error) {
	if err := checkSegment(ns); err != nil {
		return "", "", err
	}
	segs := strings.Split(key, "/")
	for _, seg := range segs {
		if err := checkSegment(seg); err != nil {
			return "", "", err
		}
	}
	// The full grammar, the engine's own: scopes, then name.<digest>.
	a, err := stash.ParseAddress(Scheme + "://" + ns + "/" + key)
	if err != nil {
		return "", "", err
	}
	if a.Namespace != ns || a.Key() != key {
		return "", "", fmt.Errorf("%w: filestash: %q/%q is not canonical", driver.ErrInvalidAddress, ns, key)
	}
	rel = ns + "/" + key
	return rel, path.Dir(rel), nil
}

// checkSegment refuses a path segment that is empty, ".", "..", hidden (our
// own files start with a dot), or that holds a separator or a NUL.
func checkSegment(seg string) error {
	if seg == "" || seg[0] == '.' || strings.ContainsAny(seg, "/\\:\x00") || !filepath.IsLocal(seg) {
		return fmt.Errorf("%w: filestash: path segment %q", driver.ErrInvalidAddress, seg)
	}
	return nil
}

// mapErr classifies a file system error: it wraps the driver sentinel the
// error means, if any, and drops the path (the engine names the address,
// once), keeping the operation and the system's reason.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: filestash: %w", driver.ErrNotFound, cause)
	case escapes(err):
		return fmt.Errorf("%w: filestash: %w", driver.ErrInvalidAddress, cause)
	}
	return fmt.Errorf("filestash: %w", cause)
}

// escapes reports whether os.Root refused a path for leaving the store (a
// symbolic link pointing outside it). os does not export that error.
func escapes(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

func tempName(prefix string) string { return prefix + rand.Text() }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// ctxReader fails reads once ctx is done, so a cancelled Put stops promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// onlyWriter hides os.File's ReadFrom, so io.CopyBuffer uses our buffer.
type onlyWriter struct{ io.Writer }

// Put implements driver.Driver. It writes the bytes and the attributes into a
// fresh hidden directory beside the stash's, fsyncs both files and the
// directory, then renames the directory into place and fsyncs its parent.
// The rename is the commit: before it nothing is visible, after it the data
// and its attributes are visible together. An existing stash is never
// replaced: Put returns driver.ErrExists.
func (s *Store) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("filestash: negative size %d", size)
	}
	rel, parent, err := keyPath(ns, key)
	if err != nil {
		return err
	}
	if _, err := s.root.Lstat(rel); err == nil {
		if err := s.clearIncomplete(rel, parent); err != nil {
			return err
		}
	}
	meta, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("filestash: encoding attributes: %w", err)
	}
	created, err := s.mkdirs(parent)
	if err != nil {
		return mapErr(err)
	}
	tmp := parent + "/" + tempName(tempPrefix)
	if err := s.root.Mkdir(tmp, dirPerm); err != nil {
		return mapErr(err)
	}
	defer func() {
		if err != nil {
			_ = s.root.RemoveAll(tmp)
		}
	}()
	if err := s.writeFile(tmp+"/"+AttrsFile, meta); err != nil {
		return err
	}
	if err := s.writeData(ctx, tmp+"/"+DataFile, r, size); err != nil {
		return err
	}
	if err := s.syncDir(tmp); err != nil {
		return err
	}
	if err := s.root.Rename(tmp, rel); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return driver.ErrExists // a concurrent Put won
		}
		if _, serr := s.root.Lstat(rel); serr == nil {
			return driver.ErrExists
		}
		return mapErr(err)
	}
	// Committed: from here on the stash is visible, so a failure to make
	// the rename durable must not remove it.
	if err := s.syncDir(parent); err != nil {
		return err
	}
	// The directories above may be someone else's fresh creation (a
	// concurrent Put, another process), not yet durable: fsync them
	// unless this Store has already.
	if created || !s.isDurable(parent) {
		if err := s.syncAncestors(parent); err != nil {
			return err
		}
		s.markDurable(parent)
	}
	return nil
}

func (s *Store) isDurable(dir string) bool {
	if !s.sync {
		return true
	}
	s.durableMu.Lock()
	defer s.durableMu.Unlock()
	_, ok := s.durable[dir]
	return ok
}

func (s *Store) markDurable(dir string) {
	if !s.sync {
		return
	}
	s.durableMu.Lock()
	defer s.durableMu.Unlock()
	if s.durable == nil || len(s.durable) >= maxDurable {
		s.durable = map[string]struct{}{}
	}
	s.durable[dir] = struct{}{}
}

// clearIncomplete decides a Put of the key whose path rel is taken. A
// whole stash there is driver.ErrExists, and a damaged one (a data file of
// the wrong size, something that is not a stash directory) the error a read
// of it reports. A stash directory missing its data or its attributes,
// which reads report as not found (no Put leaves one: a crash of a NoSync
// store, or someone else's hand, does), is deleted under the key's lock so
// that the Put writes the stash afresh: otherwise the key would be refused
// as taken forever while nothing under it can be read.
func (s *Store) clearIncomplete(rel, parent string) error {
	_, err := s.check(rel)
	switch {
	case err == nil:
		return driver.ErrExists
	case !errors.Is(err, driver.ErrNotFound):
		return err
	}
	unlock, err := s.lockKey(rel)
	if errors.Is(err, driver.ErrNotFound) {
		return nil // gone meanwhile
	}
	if err != nil {
		return err
	}
	defer unlock()
	_, err = s.check(rel)
	switch {
	case err == nil:
		return driver.ErrExists // written meanwhile
	case !errors.Is(err, driver.ErrNotFound):
		return err
	}
	if err := s.deleteLocked(rel, parent); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	return nil
}

// check returns the attributes of the stash directory rel if the stash is
// whole, as far as Get can tell before reading: a directory (not a link to
// one) holding attributes that decode and a regular data file of the size
// they record. A missing directory, attribute file or data file is
// driver.ErrNotFound; anything else amiss is driver.ErrIntegrity, as Get
// reports them.
func (s *Store) check(rel string) (*driver.Attributes, error) {
	if err := s.isStashDir(rel); err != nil {
		return nil, err
	}
	a, err := readAttrs(s.root, rel+"/"+AttrsFile)
	if err != nil {
		return nil, err
	}
	fi, err := s.root.Lstat(rel + "/" + DataFile)
	if err != nil {
		return nil, mapErr(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(DataFile, fi.Mode())
	}
	if fi.Size() != a.StoredSize {
		return nil, sizeMismatch(fi.Size(), a.StoredSize)
	}
	return a, nil
}

// isStashDir refuses a stash path that is not a directory: a file, or a
// symbolic link planted in its place (which os.Root would follow to
// another stash inside the store, whose bytes are not the key's).
func (s *Store) isStashDir(rel string) error {
	fi, err := s.root.Lstat(rel)
	if err != nil {
		return mapErr(err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: filestash: the stash is not a directory (mode %v)", driver.ErrIntegrity, fi.Mode().Type())
	}
	return nil
}

func sizeMismatch(have, want int64) error {
	return fmt.Errorf("%w: filestash: data file of %d bytes, attributes say %d", driver.ErrIntegrity, have, want)
}

// mkdirs creates dir (slash-separated, relative) and its missing parents,
// and reports whether it created any.
func (s *Store) mkdirs(dir string) (bool, error) {
	if fi, err := s.root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("filestash: %s is not a directory", dir)
		}
		return false, nil
	}
	if err := s.root.MkdirAll(dir, dirPerm); err != nil {
		return false, err
	}
	return true, nil
}

func (s *Store) writeFile(name string, data []byte) error {
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return mapErr(err)
	}
	_, err = f.Write(data)
	return s.finish(f, err)
}

func (s *Store) writeData(ctx context.Context, name string, r io.Reader, size int64) error {
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return mapErr(err)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	cr := ctxReader{ctx, r}
	n, err := io.CopyBuffer(onlyWriter{f}, io.LimitReader(cr, size), *bp)
	switch {
	case err != nil:
		err = fmt.Errorf("filestash: writing payload: %w", err)
	case n < size:
		err = fmt.Errorf("filestash: payload of %d bytes, want %d: %w", n, size, io.ErrUnexpectedEOF)
	default:
		var one [1]byte
		if m, _ := io.ReadFull(cr, one[:]); m > 0 {
			err = fmt.Errorf("filestash: payload longer than %d bytes", size)
		}
	}
	return s.finish(f, err)
}

// finish syncs and closes f, keeping the first error.
func (s *Store) finish(f *os.File, err error) error {
	if err == nil && s.sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && !strings.HasPrefix(err.Error(), "filestash:") {
		err = fmt.Errorf("filestash: %w", err)
	}
	return err
}

// syncDir fsyncs a directory, making renames and creations in it durable.
func (s *Store) syncDir(dir string) error {
	if !s.sync || runtime.GOOS == "windows" {
		return nil
	}
	if s.onSync != nil {
		s.onSync(dir)
	}
	d, err := s.root.Open(dir)
	if err != nil {
		return mapErr(err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filestash: syncing %s: %w", dir, err)
	}
	return nil
}

// syncAncestors fsyncs every directory above dir up to the store's, so that
// directories created for a new namespace or scope survive a crash.
func (s *Store) syncAncestors(dir string) error {
	for dir != "." {
		dir = path.Dir(dir)
		if err := s.syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

func decodeAttrs(b []byte) (*driver.Attributes, error) {
	a, err := driver.DecodeAttributes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: filestash: attribute file: %v", driver.ErrIntegrity, err)
	}
	return a, nil
}

// openRegular opens name for reading if it is a regular file. Anything else
// planted in the store (a FIFO, a device, a socket, a link) is refused with
// ErrIntegrity without blocking: it is checked with Lstat, opened
// non-blocking and checked again on the open file.
func openRegular(r *os.Root, name string) (*os.File, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, mapErr(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(name, fi.Mode())
	}
	f, err := r.OpenFile(name, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, mapErr(err)
		}
		return nil, notRegular(name, fi.Mode())
	}
	return f, nil
}

func notRegular(name string, m fs.FileMode) error {
	return fmt.Errorf("%w: filestash: %s is not a regular file (mode %v)", driver.ErrIntegrity, name, m.Type())
}

func readAttrs(r *os.Root, name string) (*driver.Attributes, error) {
	f, err := openRegular(r, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAttrsSize+1))
	if err != nil {
		return nil, mapErr(err)
	}
	if len(b) > maxAttrsSize {
		return nil, fmt.Errorf("%w: filestash: attribute file over %d bytes", driver.ErrIntegrity, maxAttrsSize)
	}
	return decodeAttrs(b)
}

// Get implements driver.Driver. The data and the attributes come from the
// same stash directory, even if it is deleted or replaced meanwhile: the
// reader is the open data file.
func (s *Store) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	rel, _, err := keyPath(ns, key)
	if err != nil {
		return nil, nil, err
	}
	if err := s.isStashDir(rel); err != nil {
		return nil, nil, err
	}
	sub, err := s.root.OpenRoot(rel)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	defer sub.Close()
	f, err := openRegular(sub, DataFile)
	if err != nil {
		return nil, nil, err
	}
	a, err := readAttrs(sub, AttrsFile)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, mapErr(err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != a.StoredSize {
		f.Close()
		return nil, nil, sizeMismatch(fi.Size(), a.StoredSize)
	}
	return f, a, nil
}

// Stat implements driver.Driver. It reports a stash present only if Get
// would open it: a stash whose data file is missing is driver.ErrNotFound,
// one whose data file is not of the recorded size driver.ErrIntegrity, as
// they are for Get.
func (s *Store) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rel, _, err := keyPath(ns, key)
	if err != nil {
		return nil, err
	}
	return s.check(rel)
}

// Delete implements driver.Driver. It renames the stash directory to a
// hidden name (the commit: the stash is gone for every reader), then removes
// it. A leftover of a crash in between is removed by the next List.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel, parent, err := keyPath(ns, key)
	if err != nil {
		return err
	}
	unlock, err := s.lockKey(rel)
	if err != nil {
		return err
	}
	defer unlock()
	return s.deleteLocked(rel, parent)
}

// deleteLocked deletes the stash directory rel, whose lock the caller holds.
func (s *Store) deleteLocked(rel, parent string) error {
	gone := parent + "/" + tempName(deletedPrefix)
	if err := s.root.Rename(rel, gone); err != nil {
		return mapErr(err) // ErrNotFound if a concurrent Delete won
	}
	if err := s.syncDir(parent); err != nil {
		return err
	}
	s.removeAll(gone)
	return nil
}

// stale reports whether a temporary directory and its data file have not
// been modified for StaleAfter: a Put that crashed, not one in progress.
func (s *Store) stale(tmp string) bool {
	cutoff := s.now().Add(-StaleAfter)
	for _, name := range []string{tmp, tmp + "/" + DataFile} {
		fi, err := s.root.Lstat(name)
		if err == nil && fi.ModTime().After(cutoff) {
			return false
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// removeAll removes a directory that is no longer visible as a stash. A
// failure leaves garbage, not a wrong answer, so it is not reported; List
// retries.
func (s *Store) removeAll(dir string) {
	for range 3 {
		if err := s.root.RemoveAll(dir); err == nil {
			return
		}
	}
}

// UpdateAttributes implements driver.Updater: it writes the new attributes
// to a hidden file in the stash directory, fsyncs it and renames it over the
// old ones, so a reader sees the old or the new attributes, never a mix.
func (s *Store) UpdateAttributes(ctx context.Context, ns, key string, attrs *driver.Attributes) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel, _, err := keyPath(ns, key)
	if err != nil {
		return err
	}
	unlock, err := s.lockKey(rel)
	if err != nil {
		return err
	}
	defer unlock()
	return s.writeAttrs(rel, attrs)
}

// lockKey locks the stash directory rel against every other lockKey of it:
// within this process with a mutex, across processes sharing the directory
// with flock(2) on the directory itself. Delete, UpdateAttributes,
// ModifyAttributes and DeleteIf hold it, so a read-modify-write of the
// attributes never interleaves with another or with a delete. A directory
// deleted while the lock was awaited is ErrNotFound.
func (s *Store) lockKey(rel string) (unlock func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(rel))
	mu := &s.locks[h.Sum32()%uint32(len(s.locks))]
	mu.Lock()
	fi, err := s.root.Lstat(rel)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%w: filestash: %s is not a stash directory", driver.ErrNotFound, rel)
	}
	var d *os.File
	if err == nil {
		d, err = s.root.OpenFile(rel, os.O_RDONLY|openNoBlock, 0)
	}
	if err != nil {
		mu.Unlock()
		return nil, mapErr(err)
	}
	unlock = func() {
		_ = funlock(d)
		_ = d.Close()
		mu.Unlock()
	}
	if err := flock(d); err != nil {
		_ = d.Close()
		mu.Unlock()
		return nil, fmt.Errorf("filestash: locking %s: %w", rel, err)
	}
	// Another process may have deleted (renamed away) the directory while
	// this one waited for the lock.
	locked, err1 := d.Stat()
	now, err2 := s.root.Lstat(rel)
	if err1 != nil || err2 != nil || !os.SameFile(locked, now) {
		unlock()
		return nil, fmt.Errorf("%w: filestash: %s deleted meanwhile", driver.ErrNotFound, rel)
	}
	return unlock, nil
}

// ModifyAttributes implements driver.Modifier under the key's lock
// (lockKey), across processes too.
func (s *Store) ModifyAttributes(ctx context.Context, ns, key string, fn func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rel, _, err := keyPath(ns, key)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lockKey(rel)
	if err != nil {
		return nil, err
	}
	defer unlock()
	have, err := readAttrs(s.root, rel+"/"+AttrsFile)
	if err != nil {
		return nil, err
	}
	m := fn(have)
	if m == nil {
		return have, nil
	}
	if err := s.writeAttrs(rel, m); err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteIf implements driver.ConditionalDeleter under the key's lock.
func (s *Store) DeleteIf(ctx context.Context, ns, key string, cond func(*driver.Attributes) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	rel, parent, err := keyPath(ns, key)
	if err != nil {
		return false, err
	}
	unlock, err := s.lockKey(rel)
	if err != nil {
		return false, err
	}
	defer unlock()
	have, err := readAttrs(s.root, rel+"/"+AttrsFile)
	if err != nil {
		return false, err
	}
	if !cond(have) {
		return false, nil
	}
	return true, s.deleteLocked(rel, parent)
}

// writeAttrs replaces the attributes of the stash directory rel, whose lock
// the caller holds.
func (s *Store) writeAttrs(rel string, attrs *driver.Attributes) (err error) {
	meta, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("filestash: encoding attributes: %w", err)
	}
	sub, err := s.root.OpenRoot(rel)
	if err != nil {
		return mapErr(err)
	}
	defer sub.Close()
	if _, err := sub.Lstat(AttrsFile); err != nil {
		return mapErr(err)
	}
	tmp := tempName(tempPrefix)
	f, err := sub.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return mapErr(err)
	}
	defer func() {
		if err != nil {
			_ = sub.Remove(tmp)
		}
	}()
	_, err = f.Write(meta)
	if err := s.finish(f, err); err != nil {
		return err
	}
	if err := sub.Rename(tmp, AttrsFile); err != nil {
		return mapErr(err)
	}
	if !s.sync || runtime.GOOS == "windows" {
		return nil
	}
	d, err := sub.Open(".")
	if err != nil {
		return mapErr(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("filestash: syncing %s: %w", rel, err)
	}
	return nil
}

// List implements driver.Lister. It walks every namespace and scope
// directory, in no particular order, and calls fn for every stash it finds.
// Hidden entries (writes in progress) are skipped; leftovers of interrupted
// deletes, and of Puts interrupted more than StaleAfter ago, are removed on
// the way. Entries that are not stashes are ignored.
func (s *Store) List(ctx context.Context, fn func(ns, key string, attrs *driver.Attributes) error) error {
	return s.walk(ctx, ".", "", "", fn)
}

// walk lists dir: the store (ns == ""), a namespace, or a scope directory.
func (s *Store) walk(ctx context.Context, dir, ns, prefix string, fn func(ns, key string, attrs *driver.Attributes) error) error {
	d, err := s.root.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		return mapErr(err)
	}
	defer d.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, rerr := d.ReadDir(256)
		for _, e := range ents {
			if err := s.visit(ctx, dir, ns, prefix, e, fn); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return mapErr(rerr)
		}
	}
}

func (s *Store) visit(ctx context.Context, dir, ns, prefix string, e fs.DirEntry, fn func(ns, key string, attrs *driver.Attributes) error) error {
	name := e.Name()
	if strings.HasPrefix(name, ".") {
		switch {
		case ns == "":
		case strings.HasPrefix(name, deletedPrefix):
			s.removeAll(dir + "/" + name)
		case strings.HasPrefix(name, tempPrefix) && s.stale(dir+"/"+name):
			s.removeAll(dir + "/" + name)
		}
		return nil
	}
	if !e.IsDir() {
		return nil
	}
	if ns == "" {
		if stash.ValidateNamespace(name) != nil {
			return nil
		}
		return s.walk(ctx, name, name, "", fn)
	}
	if strings.Contains(name, "=") {
		return s.walk(ctx, dir+"/"+name, ns, prefix+name+"/", fn)
	}
	key := prefix + name
	if _, _, err := keyPath(ns, key); err != nil {
		return nil // not a stash
	}
	// The attributes alone: a stash whose data is damaged or missing is
	// still swept when it expires.
	a, err := readAttrs(s.root, ns+"/"+key+"/"+AttrsFile)
	switch {
	case errors.Is(err, driver.ErrNotFound):
		return nil // deleted meanwhile
	case errors.Is(err, driver.ErrIntegrity):
		return nil // not ours, or damaged: a read reports it
	case err != nil:
		return err
	}
	return fn(ns, key, a)
}

// Scheme implements driver.Driver: it is the package's Scheme.
func (*Store) Scheme() string { return Scheme }
