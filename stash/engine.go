package stash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Engine is the portable stash store that users hold. It does the hashing,
// compression, integrity checks, expiry and error wrapping once, over an
// ordered list of backends (drivers). It is safe for concurrent use.
// Build one with New: every operation of a nil or zero Engine returns an
// error instead.
type Engine struct {
	backends      []*backend
	byScheme      map[string]*backend
	namespace     string
	scopes        []Scope
	inlineMax     int
	compressFloor int64
	maxSize       int64
	defaults      struct {
		ttl, tti time.Duration
		origin   string
	}
	logger  *slog.Logger
	now     func() time.Time
	tempDir string

	linkSigner  driver.Signer // for backends that cannot presign
	linkFetcher LinkFetcher   // nil: no link is fetched

	driverHooks []DriverHook
	opHooks     []OpHook
}

type backend struct {
	scheme  string
	driver  driver.Driver
	maxSize int64
	owned   bool
	// stored holds the keys of the latest Creates on a
	// driver.ExclusivePutter (nil on others): content created again is
	// looked up first, so a retry or a fan-out of the same payload sends
	// nothing again (see store).
	stored *lru.Cache[string, struct{}]
}

// recentStores is how many keys a backend's stored cache holds: a few
// hundred KiB at most.
const recentStores = 1024

// New builds an Engine. It needs at least one backend (WithBackend or
// WithBackendURL) unless it is only ever to create inline stashes; see the
// Default* constants for everything else.
func New(opts ...Option) (*Engine, error) {
	e := &Engine{
		byScheme:      map[string]*backend{},
		namespace:     DefaultNamespace,
		inlineMax:     DefaultInlineMax,
		compressFloor: DefaultCompressFloor,
		maxSize:       DefaultMaxSize,
		now:           time.Now,
		logger:        slog.Default(),
	}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		if err := o.applyEngine(e); err != nil {
			_ = e.Close()
			return nil, err
		}
	}
	if len(e.backends) == 0 && e.inlineMax < 0 {
		return nil, errors.New("stash: no backend configured and inline disabled: add WithBackend or WithBackendURL")
	}
	e.wrapDrivers()
	for _, b := range e.backends {
		if _, ok := b.driver.(driver.ExclusivePutter); ok {
			b.stored, _ = lru.New[string, struct{}](recentStores) // a positive size never fails
		}
	}
	return e, nil
}

// errNotMade is every operation of an Engine that New did not build (a nil
// or a zero Engine): a mistake in the calling code, reported instead of a
// panic.
var errNotMade = errors.New("stash: this engine was not built by stash.New")

// made reports whether New built the engine.
func (e *Engine) made() bool { return e != nil && e.now != nil }

func (e *Engine) addBackend(b *backend) error {
	if b.scheme == SchemeInline || ValidateScheme(b.scheme) != nil {
		return fmt.Errorf("stash: backend with scheme %q: want [a-z][a-z0-9+.-]*, not inline, http or https", truncate(b.scheme))
	}
	if _, dup := e.byScheme[b.scheme]; dup {
		return fmt.Errorf("stash: two backends for scheme %q", b.scheme)
	}
	e.backends = append(e.backends, b)
	e.byScheme[b.scheme] = b
	return nil
}

// Close closes the backends the engine opened itself (WithBackendURL).
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	var errs []error
	for _, b := range e.backends {
		if b.owned {
			errs = append(errs, b.driver.Close())
		}
	}
	return errors.Join(errs...)
}

// Namespace is the engine's default namespace.
func (e *Engine) Namespace() string {
	if e == nil {
		return ""
	}
	return e.namespace
}

// MaxSize is the largest payload the engine stores or reads (WithMaxSize).
func (e *Engine) MaxSize() int64 {
	if e == nil {
		return 0
	}
	return e.maxSize
}

// Schemes lists the schemes of the engine's backends, in the order they are
// tried.
func (e *Engine) Schemes() []string {
	if e == nil {
		return nil
	}
	out := make([]string, len(e.backends))
	for i, b := range e.backends {
		out[i] = b.scheme
	}
	return out
}

// Backend returns the driver configured for scheme, if any.
func (e *Engine) Backend(scheme string) (driver.Driver, bool) {
	if e == nil {
		return nil, false
	}
	b, ok := e.byScheme[scheme]
	if !ok {
		return nil, false
	}
	return b.driver, true
}

func (e *Engine) createOpts(opts []CreateOption) (createOptions, error) {
	o := createOptions{namespace: e.namespace, scopes: e.scopes, ttl: e.defaults.ttl, tti: e.defaults.tti, origin: e.defaults.origin}
	if len(opts) > 0 {
		// The options are applied through an interface, so what they
		// are applied to escapes: a Create without options does not
		// allocate it.
		p := new(createOptions)
		*p = o
		for _, opt := range opts {
			if opt == nil {
				continue // a nil option is none
			}
			opt.applyCreate(p)
		}
		o = *p
	}
	if o.noExpiry {
		o.ttl, o.tti = 0, 0
	}
	if o.ttl < 0 || o.tti < 0 {
		return o, errors.New("negative TTL or TTI")
	}
	if err := validNamespace(o.namespace); err != nil {
		return o, err
	}
	return o, validScopes(o.scopes)
}

func validScopes(scopes []Scope) error {
	if len(scopes) > MaxScopes {
		return invalid("more than %d scopes", MaxScopes)
	}
	for _, s := range scopes {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// setAttrs fills a with what a new stash of size bytes records.
func (e *Engine) setAttrs(a *driver.Attributes, o *createOptions, size int64, digest string) {
	now := e.now().UTC()
	*a = driver.Attributes{
		Size:        size,
		Digest:      digest,
		ContentType: o.contentType,
		Metadata:    o.metadata,
		Origin:      o.origin,
		Created:     now,
		TTI:         o.tti,
	}
	if o.ttl > 0 {
		a.ExpiresAt = now.Add(o.ttl)
	}
	if o.tti > 0 {
		a.LastAccess = now
	}
}

// inlineData returns the inline encoding of payload if it is allowed and fits:
// within the engine's limit and, whatever that is, in an inline address
// of addr's name that ParseAddress accepts.
func (e *Engine) inlineData(o *createOptions, addr Address, payload []byte) (string, bool) {
	if e.inlineMax < 0 || o.noInline || len(o.metadata) > 0 || o.contentType != "" || o.ttl > 0 || o.tti > 0 {
		return "", false
	}
	room := min(e.inlineMax, maxInlineAddress-inlineAddressLen(addr))
	if base64.StdEncoding.EncodedLen(len(payload)) > room {
		return "", false
	}
	enc := url.QueryEscape(base64.StdEncoding.EncodeToString(payload))
	return enc, len(enc) <= room
}

// inlineAddressLen is the length of the inline address of addr (no digest)
// without its data.
func inlineAddressLen(addr Address) int {
	return len(SchemeInline) + len("://") + len(addr.Namespace) + 1 + addr.keyLen() + len("?data=")
}

// putsBytes reports whether the backend that a payload of size bytes goes
// to keeps the bytes it is handed (driver.BytesKeeper).
func (e *Engine) putsBytes(size int64) bool {
	b, err := e.pick(size)
	if err != nil {
		return false
	}
	return keepsBytes(b.driver)
}

func keepsBytes(d driver.Driver) bool {
	k, ok := d.(driver.BytesKeeper)
	return ok && k.KeepsBytes()
}

func (e *Engine) pick(size int64) (*backend, error) {
	for _, b := range e.backends {
		if b.maxSize == 0 || size <= b.maxSize {
			return b, nil
		}
	}
	if len(e.backends) == 0 {
		return nil, fmt.Errorf("%w: payload of %d bytes does not fit inline and no backend is configured", ErrTooLarge, size)
	}
	return nil, fmt.Errorf("%w: no backend accepts %d bytes", ErrTooLarge, size)
}

// Create stores payload under name and returns its stash, whose address is
// content addressed: the same payload under the same name and namespace gives
// the same address, and a second Create writes nothing (it only extends the
// expiry if the new one is later; where the backend is a driver.Modifier,
// concurrent extensions never undo one another). If the stash is deleted
// while Create extends it, Create writes it afresh, as it does over a
// stash under the same key whose recorded size, digest or stored size
// cannot be this content's (a torn or tampered write). The address is
// returned only once the backend has durably written the stash, and it is
// always one that ParseAddress accepts: a name, namespace and scopes that
// would make it longer than MaxAddressLength are ErrInvalidAddress.
func (e *Engine) Create(ctx context.Context, name string, payload []byte, opts ...CreateOption) (_ *Stash, err error) {
	if !e.made() {
		return nil, opError("create", name, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpCreate, name)
	s, err := e.create(ctx, name, payload, opts)
	defer func() { done(s, err) }()
	if err != nil {
		err = opError("create", errAddr(s, name), err)
		s = nil
		return nil, err
	}
	return s, nil
}

func errAddr(s *Stash, name string) string {
	if s != nil && s.Address.Scheme != "" {
		return s.Address.String()
	}
	return name
}

func (e *Engine) create(ctx context.Context, name string, payload []byte, opts []CreateOption) (*Stash, error) {
	o, err := e.createOpts(opts)
	if err != nil {
		return nil, err
	}
	if err := validName(name); err != nil {
		return nil, err
	}
	size := int64(len(payload))
	if size > e.maxSize {
		return nil, fmt.Errorf("%w: %d bytes over the limit of %d", ErrTooLarge, size, e.maxSize)
	}
	addr := Address{Namespace: o.namespace, Scopes: o.scopes, Name: name}
	if _, ok := e.inlineData(&o, addr, payload); ok {
		addr.Scheme, addr.Data = SchemeInline, payload
		return &Stash{Address: addr, Size: size, StoredSize: size, Origin: o.origin, Created: e.now().UTC(), Data: payload}, nil
	}
	// A payload that is to be compressed is compressed, into one frame, on
	// another core while this one hashes it (startCompress: from
	// overlapMin, when there is a second P; otherwise after the hash). If
	// store finds the content already there before it puts, it never calls
	// for the result and the compression is stopped.
	var comp *compression
	if tryCompress(o.compression, e.compressFloor, payload) {
		comp = startCompress(payload)
		defer func() {
			if comp != nil {
				comp.cancel()
			}
		}()
	}
	// A payload stored as given on a backend that keeps bytes handed to it
	// (driver.BytesKeeper) is copied on another core, where there is one,
	// while this one hashes it (see cloneSummed).
	var sum [sha256.Size]byte
	var owned []byte
	if comp == nil && size >= copyAheadMin && e.putsBytes(size) {
		owned, sum = cloneSummed(payload)
	} else {
		sum = sha256.Sum256(payload)
	}
	var digest [2 * sha256.Size]byte
	encodeHex(digest[:], sum[:])
	st, err := e.store(ctx, &o, name, size, digest[:], func() (encoded, error) {
		if owned != nil {
			return encoded{data: owned, owned: true, size: size}, nil
		}
		if comp == nil {
			return encoded{data: payload, size: size}, nil
		}
		stored, enc := settle(o.compression, payload, comp.finish())
		comp = nil
		return encoded{data: stored, pooled: enc == driver.EncodingZstd, size: int64(len(stored)), enc: enc}, nil
	})
	if st != nil && err == nil {
		st.Data = payload
	}
	return st, err
}

// encoded is a payload as the backend is to hold it.
type encoded struct {
	data    []byte           // the stored bytes, in memory, or
	open    func() io.Reader // a fresh reader of them, for each Put
	pooled  bool             // data is a pooled buffer (putBuffer)
	owned   bool             // data is a copy the backend may keep (driver.OwnedBytes)
	size    int64
	enc     driver.Encoding
	release func() // removes temporary files; nil: nothing to do
}

// reader returns a fresh reader of the stored bytes; rd, if not nil, is
// where a reader of bytes in memory may be made.
func (st *encoded) reader(rd *bytes.Reader) io.Reader {
	if st.open != nil {
		return st.open()
	}
	if st.owned {
		return driver.NewOwnedBytes(st.data)
	}
	if rd == nil {
		return bytes.NewReader(st.data)
	}
	rd.Reset(st.data)
	return rd
}

// created is what store allocates for a new stash in one piece: the
// stash it returns, the attributes it puts and the reader it puts.
type created struct {
	stash Stash
	attrs driver.Attributes
	rd    bytes.Reader
}

func (st *encoded) done() {
	if st.pooled {
		putBuffer(st.data)
	}
	if st.release != nil {
		st.release()
	}
}

// store is the one write path of Create and CreateFrom, once the payload's
// size and digest are known: it picks the backend, returns the stash already
// there when the content is (extending its expiry), and otherwise encodes the
// payload (only then: encode is called at most once) and puts it. On a
// driver.ExclusivePutter that puts such a payload first, it encodes and puts
// without looking, and a Put that finds the key taken looks after. A Put
// that finds the key taken (by a concurrent Create, or by content stored
// already) extends that stash instead. On
// failure the returned stash, if any, carries the address for the error.
// digest is the payload's SHA-256 in hex.
func (e *Engine) store(ctx context.Context, o *createOptions, name string, size int64, digest []byte, encode func() (encoded, error)) (*Stash, error) {
	addr := Address{Namespace: o.namespace, Scopes: o.scopes, Name: name}
	b, err := e.pick(size)
	if err != nil {
		return nil, err
	}
	addr.Scheme = b.scheme
	if n := len(addr.Scheme) + len("://") + len(addr.Namespace) + 1 + addr.keyLen() + 1 + len(digest); n > MaxAddressLength {
		// Written, it could never be read: no address that long parses.
		return nil, invalid("address of %d bytes, over the limit of %d: a shorter name, namespace or scopes", n, MaxAddressLength)
	}
	full, key, hex := addr.withDigest(digest)
	addr.Digest = hex
	c := new(created)
	attrs := &c.attrs
	e.setAttrs(attrs, o, size, addr.Digest)
	// Content stored already is looked up before it is encoded and sent,
	// except on a driver whose Put is its own check (driver.ExclusivePutter):
	// there, a Put that finds the key taken is looked up after, unless
	// this engine stored the key lately, when the content is likely there.
	var s *Stash
	x, ok := b.driver.(driver.ExclusivePutter)
	putFirst := ok && x.ExclusivePut(size)
	if !putFirst || b.stored.Contains(full) {
		if s, err = e.existing(ctx, b, addr, key, attrs); s != nil || err != nil {
			e.remember(b, putFirst, full, err)
			return s, err
		}
	}
	st, err := encode()
	if err != nil {
		return &Stash{Address: addr}, err
	}
	defer st.done()
	attrs.Encoding, attrs.StoredSize = st.enc, st.size
	for attempt := 0; ; attempt++ {
		rd := &c.rd
		if attempt > 0 {
			rd = nil // a driver may still hold the last one
		}
		err = b.driver.Put(ctx, addr.Namespace, key, st.reader(rd), st.size, attrs)
		if !errors.Is(err, driver.ErrExists) || attempt == putAttempts-1 {
			break
		}
		// A concurrent Create wrote it first: extend its expiry to ours.
		if s, err = e.existing(ctx, b, addr, key, attrs); s != nil || err != nil {
			break
		}
	}
	// The stash returned holds c: it must not hold the stored bytes (a
	// pooled buffer, once compressed) through the reader.
	c.rd.Reset(nil)
	if err != nil && !errors.Is(err, driver.ErrExists) {
		return &Stash{Address: addr}, err
	}
	if err != nil && s == nil {
		// Every Put found the key taken and every look found nothing
		// there to read: reporting the stash as written would publish
		// a reference that serves nothing.
		return &Stash{Address: addr}, fmt.Errorf("the backend refuses the write as taken, yet serves no stash under the key: %w", err)
	}
	if s == nil {
		c.stash = stashOf(addr, attrs)
		c.stash.addr = full
		s = &c.stash
	}
	e.remember(b, putFirst, full, nil)
	return s, nil
}

// remember records a Create of full on b that err did not fail, where the
// payload is one b puts first.
func (e *Engine) remember(b *backend, putFirst bool, full string, err error) {
	if putFirst && err == nil {
		b.stored.Add(full, struct{}{})
	}
}

// putAttempts bounds the rounds of a Create whose Put finds the key taken
// and whose look then finds nothing there: each is a Delete racing it, so a
// Create that loses this many rounds in a row is rare under any churn,
// while a backend that always answers so (taken, yet serving nothing) is
// refused after a bounded number of requests rather than reported written.
const putAttempts = 8

// withDigest returns the address a (not inline, with no digest yet)
// formats to once digest (hex) is added, its key and the digest: pieces of
// one string, so that the three, and the String of the stash made, are
// one allocation.
func (a Address) withDigest(digest []byte) (full, key, hex string) {
	at := len(a.Scheme) + len("://") + len(a.Namespace) + 1
	var b strings.Builder
	b.Grow(at + a.keyLen() + 1 + len(digest))
	b.WriteString(a.Scheme)
	b.WriteString("://")
	b.WriteString(a.Namespace)
	b.WriteByte('/')
	a.writeKey(&b)
	b.WriteByte('.')
	b.Write(digest)
	full = b.String()
	return full, full[at:], full[len(full)-len(digest):]
}

// errNoAnswer is a driver that reported success without what it was asked
// for (a stash's reader or attributes): a broken backend, whose answer
// cannot be trusted as a stash.
var errNoAnswer = fmt.Errorf("%w: the backend answered without the stash's bytes or attributes", ErrIntegrity)

// existing returns the stash already stored under addr, if it is there and
// not expired, after extending its expiry to cover want. An expired leftover
// is deleted so the caller can write afresh, and so is the answer (nil, nil)
// for a stash deleted meanwhile. Where the driver can (driver.Modifier), the
// extension is a read-modify-write under the backend's own guarantee, so
// concurrent Creates never lose one another's extensions.
func (e *Engine) existing(ctx context.Context, b *backend, addr Address, key string, want *driver.Attributes) (*Stash, error) {
	have, err := b.driver.Stat(ctx, addr.Namespace, key)
	if err == nil && have == nil {
		err = errNoAnswer
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return &Stash{Address: addr}, err
	}
	if e.expired(have) {
		return e.dropExpired(ctx, b, addr, key)
	}
	if e.mismatched(addr, have, want) {
		// Not the content its key names (a torn or tampered write):
		// reported as written, it would be a reference that serves
		// nothing. It is replaced.
		e.logger.WarnContext(ctx, "stash: replacing a stored stash that does not match its address", "address", addr.String())
		return e.dropWhere(ctx, b, addr, key, func(a *driver.Attributes) bool { return e.mismatched(addr, a, want) })
	}
	merged, changed := extend(have, want)
	if !changed {
		return stashFrom(addr, have), nil
	}
	if m, ok := b.driver.(driver.Modifier); ok {
		expired := false
		got, err := m.ModifyAttributes(ctx, addr.Namespace, key, func(cur *driver.Attributes) *driver.Attributes {
			if cur == nil {
				return nil // a broken driver: nothing to extend
			}
			if expired = e.expired(cur); expired {
				return nil
			}
			merged, changed := extend(cur, want)
			if !changed {
				return nil
			}
			return merged
		})
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, nil // deleted meanwhile: write it afresh
		case err != nil:
			return &Stash{Address: addr}, err
		case expired:
			return e.dropExpired(ctx, b, addr, key)
		case got == nil:
			return &Stash{Address: addr}, errNoAnswer
		}
		return stashFrom(addr, got), nil
	}
	if u, ok := b.driver.(driver.Updater); ok {
		err := u.UpdateAttributes(ctx, addr.Namespace, key, merged)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, nil // deleted meanwhile: write it afresh
		case errors.Is(err, ErrUnsupported):
			// The store behind the driver cannot (an objectstore
			// service without the expiry extension): as without
			// Updater, the stash keeps the expiry it has.
			e.logger.WarnContext(ctx, "stash: backend cannot extend the expiry of existing content", "address", addr.String(), "err", err)
		case err != nil:
			return &Stash{Address: addr}, err
		default:
			have = merged
		}
	} else {
		e.logger.WarnContext(ctx, "stash: backend cannot extend the expiry of existing content", "address", addr.String())
	}
	return stashFrom(addr, have), nil
}

// dropExpired deletes an expired stash so that it can be written afresh:
// only if it is still expired, where the driver can check that atomically
// (driver.ConditionalDeleter). It returns (nil, nil) when the caller should
// write.
func (e *Engine) dropExpired(ctx context.Context, b *backend, addr Address, key string) (*Stash, error) {
	return e.dropWhere(ctx, b, addr, key, e.expired)
}

// mismatched reports whether have, stored under addr's key, cannot be the
// content a Create of want's size and digest would write there.
func (e *Engine) mismatched(addr Address, have, want *driver.Attributes) bool {
	return have != nil && (have.Size != want.Size || have.Digest != "" && have.Digest != want.Digest || e.check(addr, have) != nil)
}

// dropWhere deletes a stash that is to be written afresh, only if cond
// still holds for it where the driver can check that atomically
// (driver.ConditionalDeleter). It returns (nil, nil) when the caller
// should write.
func (e *Engine) dropWhere(ctx context.Context, b *backend, addr Address, key string, cond func(*driver.Attributes) bool) (*Stash, error) {
	var err error
	if cd, ok := b.driver.(driver.ConditionalDeleter); ok {
		_, err = cd.DeleteIf(ctx, addr.Namespace, key, cond)
	} else {
		err = b.driver.Delete(ctx, addr.Namespace, key)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return &Stash{Address: addr}, err
	}
	// Renewed meanwhile by another Create: writing finds it (ErrExists)
	// and extends it.
	return nil, nil
}

// extend returns have with its expiry pushed out to cover want's.
func extend(have, want *driver.Attributes) (*driver.Attributes, bool) {
	m := *have
	changed := false
	if !m.ExpiresAt.IsZero() && (want.ExpiresAt.IsZero() || want.ExpiresAt.After(m.ExpiresAt)) {
		m.ExpiresAt, changed = want.ExpiresAt, true
	}
	if m.TTI > 0 && (want.TTI == 0 || want.TTI > m.TTI) {
		m.TTI, changed = want.TTI, true
	}
	if m.TTI > 0 && want.Created.After(m.LastAccess) {
		m.LastAccess, changed = want.Created, true
	}
	return &m, changed
}

// Retrieve reads a whole stash into memory and verifies it against the
// digest in its address. A mismatch is ErrIntegrity and no data is returned;
// an expired stash is ErrExpired. Use Open for payloads too large to hold.
//
// Retrieve is Open read to its end into one buffer of the recorded size
// (bounded by WithMaxSize before anything is read), as Go CDK's ReadAll is
// built on NewReader: there is one read path, for addresses and share links
// alike.
func (e *Engine) Retrieve(ctx context.Context, address string) (_ *Stash, err error) {
	if !e.made() {
		return nil, opError("retrieve", address, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpRetrieve, address)
	s, err := e.retrieve(ctx, address)
	defer func() { done(s, err) }()
	if err != nil {
		s = nil
		return nil, opError("retrieve", address, err)
	}
	return s, nil
}

func (e *Engine) retrieve(ctx context.Context, address string) (*Stash, error) {
	r, err := e.open(ctx, address, true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// The stash returned is the Reader's (one allocation fewer): Close
	// lets go of everything else it holds.
	if r.inline != nil {
		r.stash.Data = r.inline
		return &r.stash, nil
	}
	data, err := readAll(r)
	if err != nil {
		return nil, err
	}
	r.stash.Data = data
	return &r.stash, nil
}

func inlineStash(addr Address) *Stash {
	n := int64(len(addr.Data))
	return &Stash{Address: addr, Size: n, StoredSize: n, Data: addr.Data}
}

// source is where a read starts: the stored bytes (from a backend's Get or a
// link's response) with the address and attributes to decode and verify
// them by.
type source struct {
	rc    io.ReadCloser
	addr  Address
	attrs *driver.Attributes
	b     *backend // nil for links
	// startMax bounds Retrieve's first buffer: a backend's stored size is
	// checked against the recorded one, a link's is what its server says.
	startMax int64
}

// source opens the stored bytes of an address (from its backend; addr is
// address parsed) or of a share link (through the LinkFetcher), checked against the engine's
// limits and the expiry before anything is read.
func (e *Engine) source(ctx context.Context, address string, addr Address) (source, error) {
	if IsLink(address) {
		src, err := e.fetchLink(ctx, address)
		if err != nil {
			return source{}, err
		}
		return *src, nil
	}
	b, ok := e.byScheme[addr.Scheme]
	if !ok {
		return source{}, noBackendError(addr.Scheme)
	}
	rc, attrs, err := b.driver.Get(ctx, addr.Namespace, keyOf(address, addr))
	if err == nil && (rc == nil || attrs == nil) {
		if rc != nil {
			_ = rc.Close()
		}
		err = errNoAnswer
	}
	if err != nil {
		return source{}, err
	}
	if err := e.check(addr, attrs); err != nil {
		_ = rc.Close()
		return source{}, err
	}
	return source{rc: rc, addr: addr, attrs: attrs, b: b, startMax: math.MaxInt64}, nil
}

// keyOf is addr.Key() for an address parsed from address, without building
// it where address holds it (the rest of the string after the namespace,
// compared piece by piece).
func keyOf(address string, addr Address) string {
	if off := len(addr.Scheme) + len("://") + len(addr.Namespace) + 1; off <= len(address) && addr.isKey(address[off:]) {
		return address[off:]
	}
	return addr.Key()
}

// resolve parses an address and finds its backend.
func (e *Engine) resolve(address string) (Address, *backend, error) {
	addr, err := ParseAddress(address)
	if err != nil {
		return addr, nil, err
	}
	if addr.IsInline() {
		return addr, nil, nil
	}
	b, ok := e.byScheme[addr.Scheme]
	if !ok {
		return addr, nil, noBackendError(addr.Scheme)
	}
	return addr, b, nil
}

// expired reports whether a has expired by the engine's clock, reading the
// clock only when a has an expiry at all. No attributes (a broken driver's
// callback) have not: nothing is deleted on their account.
func (e *Engine) expired(a *driver.Attributes) bool {
	return a != nil && (!a.ExpiresAt.IsZero() || a.TTI > 0) && a.Expired(e.now())
}

// check refuses expired stashes and sizes over the limit before any read.
func (e *Engine) check(addr Address, a *driver.Attributes) error {
	if e.expired(a) {
		return ErrExpired
	}
	if a.Size < 0 || a.StoredSize < 0 {
		return fmt.Errorf("%w: negative recorded size", ErrIntegrity)
	}
	if a.Size > e.maxSize || a.StoredSize > e.maxSize {
		return fmt.Errorf("%w: recorded size %d (stored %d) over the limit of %d", ErrTooLarge, a.Size, a.StoredSize, e.maxSize)
	}
	// Stored as given, the payload is as long as what the backend holds:
	// a recorded size that says otherwise is refused before any read or
	// allocation.
	switch {
	case a.Encoding != driver.EncodingIdentity || a.Size == a.StoredSize:
	case a.Size > a.StoredSize:
		return fmt.Errorf("%w: fewer bytes stored (%d) than the recorded size (%d)", ErrIntegrity, a.StoredSize, a.Size)
	default:
		return errOverlong
	}
	if a.Digest != "" && a.Digest != addr.Digest {
		return fmt.Errorf("%w: stored digest %.12s… does not match the address", ErrIntegrity, a.Digest)
	}
	return nil
}

// touch records a read for time-to-idle. It writes at most once per tenth of
// the TTI, and a failure only costs idle time, so it is logged, not returned.
func (e *Engine) touch(ctx context.Context, b *backend, addr Address, a *driver.Attributes) {
	if a.TTI <= 0 {
		return
	}
	now := e.now().UTC()
	if now.Sub(a.LastAccess) < a.TTI/10 {
		return
	}
	if md, ok := b.driver.(driver.Modifier); ok {
		// Under the backend's guarantee, so that a concurrent extension
		// of the expiry is never undone by this write.
		_, err := md.ModifyAttributes(ctx, addr.Namespace, addr.Key(), func(cur *driver.Attributes) *driver.Attributes {
			if cur == nil || cur.TTI <= 0 || now.Sub(cur.LastAccess) < cur.TTI/10 {
				return nil
			}
			m := *cur
			m.LastAccess = now
			return &m
		})
		if err != nil {
			e.logger.WarnContext(ctx, "stash: recording access time", "address", addr.String(), "err", err)
		}
		return
	}
	u, ok := b.driver.(driver.Updater)
	if !ok {
		return
	}
	m := *a
	m.LastAccess = now
	if err := u.UpdateAttributes(ctx, addr.Namespace, addr.Key(), &m); errors.Is(err, ErrUnsupported) {
		// The store said it cannot (an objectstore service, which
		// records reads itself, refusing a read-only token): nothing
		// to act on.
		e.logger.DebugContext(ctx, "stash: recording access time", "address", addr.String(), "err", err)
	} else if err != nil {
		e.logger.WarnContext(ctx, "stash: recording access time", "address", addr.String(), "err", err)
	}
}

// Open opens a stash, or a share link, for streaming. The reader verifies
// as it goes: it returns ErrIntegrity instead of io.EOF if the bytes do not
// match the digest, so a caller that reads to a clean EOF has the exact
// payload. Bytes read before the error are unverified: treat them as
// tentative. It never reads more than the recorded size, plus one byte to
// detect a longer stream.
func (e *Engine) Open(ctx context.Context, address string) (_ *Reader, err error) {
	if !e.made() {
		return nil, opError("open", address, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpOpen, address)
	r, err := e.open(ctx, address, false)
	defer func() {
		if err != nil {
			done(nil, err)
		} else {
			done(r.Stash(), nil)
		}
	}()
	if err != nil {
		return nil, opError("open", address, err)
	}
	return r, nil
}

// open is the one read path. whole says the reader is to be read to its end
// into memory (Retrieve): then stored bytes that claim to decode to more than
// readRatio times their length are read first and counted (see readAll), so
// the buffer is allocated only for a size they are known to decode to.
func (e *Engine) open(ctx context.Context, address string, whole bool) (*Reader, error) {
	var addr Address
	if !IsLink(address) {
		var err error
		if addr, err = ParseAddress(address); err != nil {
			return nil, err
		}
		if addr.IsInline() {
			return bytesReader(inlineStash(addr)), nil
		}
	}
	src, err := e.source(ctx, address, addr)
	if err != nil {
		return nil, err
	}
	counted := false
	fixed := src.b != nil && keepsBytes(src.b.driver)
	ahead := whole && beyondRatio(src.attrs, src.startMax) && src.attrs.StoredSize > 0
	// A store whose bytes arrive over a connection can lie in its stored
	// size as in its Content-Length: the buffer of the recorded size that
	// readRatio allows is allocated only once more than storedReadStart
	// stored bytes have arrived, read first into a buffer that grows as
	// they do (a store that keeps its bytes in memory has them all).
	spool := whole && !fixed && src.attrs.Encoding != driver.EncodingIdentity && src.attrs.StoredSize > storedReadStart
	// Compressed bytes of unknown length (a link served without a
	// Content-Length) are read to their end first and counted, as bytes
	// beyond the ratio are: decoded into a growing buffer, a bomb that
	// does not match its digest would take up to the recorded size before
	// the digest refused it.
	unknown := whole && src.attrs.Encoding != driver.EncodingIdentity && src.attrs.StoredSize <= 0
	if unknown || ahead || spool {
		var comp []byte
		if unknown {
			comp, err = readStoredAll(&src, e.maxSize)
		} else {
			comp, err = readStored(&src)
		}
		_ = src.rc.Close()
		if err != nil {
			return nil, err
		}
		if unknown {
			src.attrs.StoredSize, ahead = int64(len(comp)), true
		}
		if ahead {
			if err := decodedSize(comp, src.attrs, src.addr); err != nil {
				return nil, err
			}
		}
		src.rc, counted = bytesReaderOf(comp), ahead
	}
	r, err := newReader(src.rc, src.attrs, src.addr)
	if err != nil {
		_ = src.rc.Close()
		return nil, err
	}
	r.startMax, r.counted = src.startMax, counted
	r.fixed = fixed
	if src.b != nil {
		e.touch(ctx, src.b, src.addr, src.attrs)
	}
	return r, nil
}

// Stat returns a stash's attributes without its data.
func (e *Engine) Stat(ctx context.Context, address string) (s *Stash, err error) {
	if !e.made() {
		return nil, opError("stat", address, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpStat, address)
	defer func() { done(s, err) }()
	addr, b, err := e.resolve(address)
	if err != nil {
		return nil, opError("stat", address, err)
	}
	if addr.IsInline() {
		s := inlineStash(addr)
		s.Data = nil
		return s, nil
	}
	a, err := b.driver.Stat(ctx, addr.Namespace, keyOf(address, addr))
	if err == nil && a == nil {
		err = errNoAnswer
	}
	if err == nil && e.expired(a) {
		err = ErrExpired
	}
	if err != nil {
		return nil, opError("stat", address, err)
	}
	return stashFrom(addr, a), nil
}

// Delete removes a stash. Deleting an inline stash does nothing; deleting a
// missing one is ErrNotFound.
func (e *Engine) Delete(ctx context.Context, address string) (err error) {
	if !e.made() {
		return opError("delete", address, errNotMade)
	}
	ctx, done := e.startOp(ctx, OpDelete, address)
	defer func() { done(nil, err) }()
	addr, b, err := e.resolve(address)
	if err != nil {
		return opError("delete", address, err)
	}
	if addr.IsInline() {
		return nil
	}
	return opError("delete", address, b.driver.Delete(ctx, addr.Namespace, keyOf(address, addr)))
}

// List calls fn for every stash in namespace (every namespace when it is
// empty) held by the backends that can list their contents (driver.Lister),
// expired ones included (Stash.Expiry tells them apart). Objects whose keys
// are not stash addresses are skipped. An error from fn stops the walk and is
// returned as it is; an engine with no listing backend is ErrUnsupported.
func (e *Engine) List(ctx context.Context, namespace string, fn func(*Stash) error) error {
	if !e.made() {
		return opError("list", namespace, errNotMade)
	}
	listed := false
	for _, b := range e.backends {
		l, ok := b.driver.(driver.Lister)
		if !ok {
			continue
		}
		listed = true
		var fnErr error
		err := l.List(ctx, func(ns, key string, a *driver.Attributes) error {
			if a == nil || namespace != "" && ns != namespace {
				return ctx.Err()
			}
			addr, err := ParseAddress(b.scheme + "://" + ns + "/" + key)
			if err != nil {
				return ctx.Err()
			}
			if fnErr = fn(stashFrom(addr, a)); fnErr != nil {
				return fnErr
			}
			return ctx.Err()
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return opError("list", b.scheme+"://"+namespace, err)
		}
	}
	if !listed {
		return opError("list", namespace, fmt.Errorf("%w: no backend can list its contents", ErrUnsupported))
	}
	return nil
}

// Sweep deletes expired stashes from every backend that can list its
// contents (driver.Lister), and returns how many it deleted; it logs each
// backend it passes over (at info). Expired stashes
// already read as ErrExpired; Sweep reclaims their space. Where the backend
// is a driver.ConditionalDeleter, each deletion re-checks the expiry under
// the backend's own guarantee, so a stash that a concurrent Create renewed
// after it was listed is kept.
func (e *Engine) Sweep(ctx context.Context) (_ int, err error) {
	if !e.made() {
		return 0, opError("sweep", "", errNotMade)
	}
	ctx, done := e.startOp(ctx, OpSweep, "")
	defer func() { done(nil, err) }()
	n := 0
	now := e.now()
	for _, b := range e.backends {
		l, ok := b.driver.(driver.Lister)
		if !ok {
			// Nothing to sweep here: such a store (an objectstore
			// service) expires its objects itself, and expired
			// stashes read as expired meanwhile.
			e.logger.InfoContext(ctx, "stash: sweep passes over a backend that cannot list its contents", "scheme", b.scheme)
			continue
		}
		err := l.List(ctx, func(ns, key string, a *driver.Attributes) error {
			if a == nil || !a.Expired(now) {
				return nil
			}
			var err error
			deleted := true
			if cd, ok := b.driver.(driver.ConditionalDeleter); ok {
				// Re-checked under the backend's guarantee: a Create
				// may have renewed the stash since it was listed.
				deleted, err = cd.DeleteIf(ctx, ns, key, func(a *driver.Attributes) bool { return e.expired(a) })
			} else {
				err = b.driver.Delete(ctx, ns, key)
			}
			if err == nil && deleted {
				n++
			} else if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			return ctx.Err()
		})
		if err != nil {
			return n, opError("sweep", b.scheme+"://", err)
		}
	}
	return n, nil
}

// noBackendError is an address whose scheme no backend of this engine
// serves: the engine does not support it (ErrUnsupported), and for this
// engine it is no valid address either (ErrInvalidAddress).
type noBackendError string

func (e noBackendError) Error() string {
	return fmt.Sprintf("stash: no backend for scheme %q", string(e))
}

func (noBackendError) Is(target error) bool {
	return target == ErrUnsupported || target == ErrInvalidAddress
}
