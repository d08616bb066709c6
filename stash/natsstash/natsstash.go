package natsstash

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucketPrefix is prepended to a namespace to name its bucket.
const DefaultBucketPrefix = "claimstash_"

// MetadataKey is the object metadata entry (ObjectMeta.Metadata) that holds
// the stash attributes, as JSON (driver.Attributes).
const MetadataKey = "claimstash-attributes"

// DefaultReadTimeout is how long a read waits for the next chunk, when the
// caller's context has no earlier deadline, before it fails.
const DefaultReadTimeout = 30 * time.Second

// Scheme is the address and URL scheme of this backend: addresses
// nats://namespace/..., backend URLs nats://...
const Scheme = "nats"

func init() {
	stash.RegisterScheme(Scheme, func(ctx context.Context, u *url.URL) (driver.Driver, error) {
		return OpenURL(ctx, u)
	})
}

// An Option configures a Store; pass it to New. In a URL each option is a
// query parameter (see the package documentation). Bucket settings apply
// when the store creates a bucket; an existing bucket is used as it is.
type Option interface {
	apply(*settings)
}

type option func(*settings)

func (f option) apply(o *settings) { f(o) }

// settings is what the options set; the zero value means the documented
// defaults.
type settings struct {
	BucketPrefix string
	Replicas     int
	Storage      jetstream.StorageType
	TTL          time.Duration
	ChunkSize    uint32
	Compression  bool
	ReadTimeout  time.Duration
}

// WithBucketPrefix names a namespace's bucket: prefix + namespace
// (DefaultBucketPrefix). It must match [A-Za-z0-9_-]+: the object-store
// bucket name rules. List (and so Sweep) walks only the buckets with this
// prefix. URL: bucket_prefix=.
func WithBucketPrefix(prefix string) Option {
	return option(func(o *settings) { o.BucketPrefix = prefix })
}

// WithReplicas sets the replicas of each bucket in a clustered JetStream (1
// to 5; 1 by default). URL: replicas=.
func WithReplicas(n int) Option { return option(func(o *settings) { o.Replicas = n }) }

// WithStorage sets the storage of each bucket: jetstream.FileStorage (the
// default) or jetstream.MemoryStorage. URL: storage=file|memory.
func WithStorage(st jetstream.StorageType) Option {
	return option(func(o *settings) { o.Storage = st })
}

// WithBucketTTL sets the bucket TTL (the stream's MaxAge): JetStream
// physically removes whatever was written longer ago. None by default.
// There is no per-object TTL; see the package documentation. URL: ttl=.
func WithBucketTTL(d time.Duration) Option { return option(func(o *settings) { o.TTL = d }) }

// WithChunkSize sets the chunk size of the object store's messages (the
// client's default, 128 KiB, otherwise). It must stay under the server's
// max_payload. URL: chunk_size=.
func WithChunkSize(n uint32) Option { return option(func(o *settings) { o.ChunkSize = n }) }

// S2Compression turns on S2 compression of the bucket's stream on disk.
// Payloads are zstd-compressed by the engine already where that pays.
// URL: compression=true.
func S2Compression() Option { return option(func(o *settings) { o.Compression = true }) }

// WithReadTimeout bounds the wait for the next chunk of a read whose
// context has no deadline (DefaultReadTimeout). A read that gets nothing
// for that long fails (matching nats.ErrTimeout) instead of hanging; one
// that keeps getting chunks runs as long as it needs.
// URL: read_timeout=.
func WithReadTimeout(d time.Duration) Option { return option(func(o *settings) { o.ReadTimeout = d }) }

func (o *settings) validate() error {
	if o.BucketPrefix == "" {
		o.BucketPrefix = DefaultBucketPrefix
	}
	if !validBucket(o.BucketPrefix) {
		return fmt.Errorf("natsstash: bucket prefix %q: want [A-Za-z0-9_-]+", o.BucketPrefix)
	}
	if o.Replicas < 0 || o.Replicas > 5 {
		return fmt.Errorf("natsstash: replicas %d: want 1 to 5", o.Replicas)
	}
	if o.Storage != jetstream.FileStorage && o.Storage != jetstream.MemoryStorage {
		return fmt.Errorf("natsstash: unknown storage type %d", o.Storage)
	}
	if o.TTL < 0 {
		return fmt.Errorf("natsstash: negative TTL %v", o.TTL)
	}
	if o.ReadTimeout < 0 {
		return fmt.Errorf("natsstash: negative read timeout %v", o.ReadTimeout)
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	return nil
}

func validBucket(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Store is a stash backend on the JetStream object store: one bucket per
// namespace, one object per stash. It is safe for concurrent use. The zero
// value is not usable; call New.
type Store struct {
	js    jetstream.JetStream
	nc    *nats.Conn // closed by Close when the store opened it
	opts  settings
	locks [64]sync.Mutex // per-key serialisation of Put within this process

	mu      sync.Mutex
	buckets map[string]*bucket // by namespace
}

type bucket struct {
	name   string
	obs    jetstream.ObjectStore
	stream jetstream.Stream
	ttl    time.Duration // the stream's MaxAge
}

var (
	_ driver.Driver  = (*Store)(nil)
	_ driver.Updater = (*Store)(nil)
	_ driver.Lister  = (*Store)(nil)

	_ driver.ExclusivePutter    = (*Store)(nil)
	_ driver.Modifier           = (*Store)(nil)
	_ driver.ConditionalDeleter = (*Store)(nil)
)

// New returns a store over an existing JetStream context. The caller keeps
// the connection: Close does not close it.
func New(js jetstream.JetStream, opts ...Option) (*Store, error) {
	var o settings
	for _, opt := range opts {
		if opt == nil {
			continue // a nil option is none
		}
		opt.apply(&o)
	}
	return newStore(js, o)
}

func newStore(js jetstream.JetStream, o settings) (*Store, error) {
	if js == nil {
		return nil, errors.New("natsstash: nil JetStream")
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Store{js: js, opts: o, buckets: map[string]*bucket{}}, nil
}

// OpenURL connects to the servers in u and returns a store that owns the
// connection (Close closes it). See the package documentation for the URL
// form and its parameters; unknown parameters are refused.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	if u.Scheme != Scheme {
		return nil, fmt.Errorf("%w: natsstash: URL scheme %q: want nats", driver.ErrInvalidAddress, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: natsstash: URL %q has no host", driver.ErrInvalidAddress, u.Redacted())
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: natsstash: URL %q: want nats://host:port?params, without a path", driver.ErrInvalidAddress, u.Redacted())
	}
	if err := driver.CheckHost(u); err != nil {
		return nil, fmt.Errorf("%w: natsstash: URL %q: %v", driver.ErrInvalidAddress, u.Redacted(), err)
	}
	var o settings
	natsOpts := []nats.Option{nats.Name("claimstash"), nats.MaxReconnects(-1)}
	params, err := driver.URLParams(u)
	if err != nil {
		return nil, fmt.Errorf("%w: natsstash: %v", driver.ErrInvalidAddress, err)
	}
	for k, v := range params {
		var perr error
		switch k {
		case "bucket_prefix":
			o.BucketPrefix = v
		case "replicas":
			o.Replicas, perr = strconv.Atoi(v)
		case "storage":
			switch v {
			case "file":
				o.Storage = jetstream.FileStorage
			case "memory":
				o.Storage = jetstream.MemoryStorage
			default:
				perr = errors.New("want file or memory")
			}
		case "ttl":
			o.TTL, perr = time.ParseDuration(v)
		case "chunk_size":
			var n uint64
			n, perr = strconv.ParseUint(v, 10, 32)
			o.ChunkSize = uint32(n)
		case "compression":
			o.Compression, perr = strconv.ParseBool(v)
		case "read_timeout":
			o.ReadTimeout, perr = time.ParseDuration(v)
		case "name":
			natsOpts = append(natsOpts, nats.Name(v))
		case "creds":
			natsOpts = append(natsOpts, nats.UserCredentials(v))
		default:
			return nil, fmt.Errorf("%w: natsstash: unknown URL parameter %q", driver.ErrInvalidAddress, k)
		}
		if perr != nil {
			// Not strconv's or time's wording.
			var ne *strconv.NumError
			switch {
			case errors.As(perr, &ne) && ne.Func == "ParseBool":
				perr = errors.New("want true or false")
			case errors.As(perr, &ne):
				perr = errors.New("want a number in range")
			case k == "ttl" || k == "read_timeout":
				perr = errors.New("want a duration such as 30s")
			}
			return nil, fmt.Errorf("%w: natsstash: URL parameter %s=%q: %v", driver.ErrInvalidAddress, k, v, perr)
		}
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", driver.ErrInvalidAddress, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// User info in the URL is passed on: nats.go reads user:password@ and
	// token@ itself.
	servers := (&url.URL{Scheme: "nats", User: u.User, Host: u.Host}).String()
	nc, err := nats.Connect(servers, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("natsstash: connect %s: %w", u.Redacted(), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsstash: %w", err)
	}
	s, err := newStore(js, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.nc = nc
	return s, nil
}

// BucketName is the bucket that holds namespace ns.
func (s *Store) BucketName(ns string) string { return s.opts.BucketPrefix + ns }

// bucket binds to the bucket of ns, creating it if create is set. A missing
// bucket is ErrNotFound.
func (s *Store) bucket(ctx context.Context, ns string, create bool) (*bucket, error) {
	s.mu.Lock()
	b, ok := s.buckets[ns]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	name := s.BucketName(ns)
	obs, err := s.js.ObjectStore(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		obs, err = s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      name,
			Description: "claimstash namespace " + ns,
			TTL:         s.opts.TTL,
			Storage:     s.opts.Storage,
			Replicas:    s.opts.Replicas,
			Compression: s.opts.Compression,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			obs, err = s.js.ObjectStore(ctx, name) // created meanwhile, or with other settings
		}
	}
	if err != nil {
		return nil, mapErr(err)
	}
	st, err := s.js.Stream(ctx, "OBJ_"+name)
	if err != nil {
		return nil, mapErr(err)
	}
	b = &bucket{name: name, obs: obs, stream: st}
	if info := st.CachedInfo(); info != nil {
		b.ttl = info.Config.MaxAge
	}
	s.mu.Lock()
	if cached, ok := s.buckets[ns]; ok {
		b = cached
	} else {
		s.buckets[ns] = b
	}
	s.mu.Unlock()
	return b, nil
}

// forget drops a cached bucket after an error says it is gone, so the next
// Put creates it again.
func (s *Store) forget(ns string, err error) {
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		s.mu.Lock()
		delete(s.buckets, ns)
		s.mu.Unlock()
	}
}

// mapErr makes the client's not-found and corruption errors match the
// driver's sentinels, keeping the client's error in the chain.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrObjectNotFound), errors.Is(err, jetstream.ErrBucketNotFound),
		errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrMsgNotFound),
		errors.Is(err, jetstream.ErrUpdateMetaDeleted):
		return fmt.Errorf("%w: %w", driver.ErrNotFound, err)
	case errors.Is(err, jetstream.ErrDigestMismatch), errors.Is(err, jetstream.ErrBadObjectMeta),
		errors.Is(err, jetstream.ErrInvalidDigestFormat):
		return fmt.Errorf("%w: %w", driver.ErrIntegrity, err)
	}
	return err
}

func wrap(op, ns, key string, err error) error {
	if err == nil {
		return nil
	}
	// The engine names the address; the driver says what JetStream answered.
	if m := mapErr(err); m != err {
		return m
	}
	return fmt.Errorf("natsstash: %s: %w", op, err)
}

// lookup returns the live object info of key. In a bucket with a TTL it
// also checks that the first chunk is still there: JetStream ages chunks
// out by their own write time, so metadata rewritten later (UpdateMeta)
// can outlive them.
func (s *Store) lookup(ctx context.Context, b *bucket, key string) (*jetstream.ObjectInfo, error) {
	info, err := b.obs.GetInfo(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := b.chunksPresent(ctx, info); err != nil {
		return nil, err
	}
	return info, nil
}

func (b *bucket) chunksPresent(ctx context.Context, info *jetstream.ObjectInfo) error {
	if b.ttl <= 0 || info.Size == 0 {
		return nil
	}
	_, err := b.stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(fmt.Sprintf("$O.%s.C.%s", b.name, info.NUID)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: chunks removed by the bucket TTL (%v)", driver.ErrNotFound, b.ttl)
	}
	return err
}

// attributes decodes the attributes stored with an object. An object put
// by other tools (nats object put) gets attributes made from its info: the
// engine still verifies its bytes against the address's digest.
func attributes(info *jetstream.ObjectInfo, strict bool) (*driver.Attributes, error) {
	raw, ok := info.Metadata[MetadataKey]
	if !ok {
		n := int64(info.Size)
		return &driver.Attributes{Size: n, StoredSize: n, Created: info.ModTime}, nil
	}
	a, err := driver.DecodeAttributes([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: stored attributes: %v", driver.ErrIntegrity, err)
	}
	if strict && a.StoredSize != int64(info.Size) {
		return nil, fmt.Errorf("%w: object holds %d bytes, attributes say %d", driver.ErrIntegrity, info.Size, a.StoredSize)
	}
	return a, nil
}

func (s *Store) lock(ns, key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

// exclusivePutMax is the largest payload Create puts without a lookup of
// its own first (ExclusivePut): Put looks anyway, and a payload stored
// already is then only compressed in vain, which up to this size costs
// less than the lookup it saves for every new stash.
const exclusivePutMax = 1 << 20

// ExclusivePut implements driver.ExclusivePutter: Put looks the key up
// before it reads a byte and answers driver.ErrExists for one that is
// there, so the engine puts a payload of up to 1 MiB without a lookup of
// its own first.
func (s *Store) ExclusivePut(size int64) bool { return size <= exclusivePutMax }

// Put implements driver.Driver. It streams r into the object store, which
// publishes the object's info only after every chunk is stored: a failed
// or cancelled Put leaves no readable object (its chunks are purged). If
// key exists, Put returns driver.ErrExists without writing.
func (s *Store) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) error {
	if size < 0 {
		return fmt.Errorf("natsstash: put: negative size")
	}
	meta, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("natsstash: put: attributes: %w", err)
	}
	// Two Puts of one key in this process would both see it missing and
	// the second would replace the first; between processes that race
	// remains (see the package documentation).
	mu := s.lock(ns, key)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		started, err := s.put(ctx, ns, key, r, size, meta, objectHeaders(attrs))
		if attempt == 0 && !started && isGone(err) {
			// The cached bucket was deleted under us, before any byte
			// was read: recreate it, once.
			s.forget(ns, jetstream.ErrBucketNotFound)
			continue
		}
		if errors.Is(err, driver.ErrExists) {
			return err
		}
		return wrap("put", ns, key, err)
	}
}

func isGone(err error) bool {
	return errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// objectHeaders are the headers of an object, for clients without
// claimstash (nats object info, nats-py's ObjectInfo.headers): the
// payload's Content-Type, and Content-Encoding: zstd for a compressed
// stash, as on S3. The attributes stay the record; these only label.
func objectHeaders(a *driver.Attributes) nats.Header {
	if a == nil || a.ContentType == "" && a.Encoding != driver.EncodingZstd {
		return nil
	}
	h := nats.Header{}
	if a.ContentType != "" {
		h.Set("Content-Type", a.ContentType)
	}
	if a.Encoding == driver.EncodingZstd {
		h.Set("Content-Encoding", "zstd")
	}
	return h
}

// put reports whether it started reading r.
func (s *Store) put(ctx context.Context, ns, key string, r io.Reader, size int64, meta []byte, headers nats.Header) (bool, error) {
	b, err := s.bucket(ctx, ns, true)
	if err != nil {
		return false, err
	}
	if _, err := s.lookup(ctx, b, key); err == nil {
		return false, driver.ErrExists
	} else if isGone(err) || !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, err
	}
	om := jetstream.ObjectMeta{Name: key, Headers: headers, Metadata: map[string]string{MetadataKey: string(meta)}}
	if s.opts.ChunkSize > 0 {
		om.Opts = &jetstream.ObjectMetaOptions{ChunkSize: s.opts.ChunkSize}
	}
	// The client purges the chunks of a failed Put with the Put's own
	// context, which fails once that context is cancelled and leaves the
	// chunks behind (unreadable, but taking space). So the client gets a
	// context that is never cancelled, and cancellation reaches it through
	// the reader instead, which stops at the next chunk.
	er := &exactReader{ctx: ctx, r: r, left: size}
	info, err := b.obs.Put(context.WithoutCancel(ctx), om, er)
	if err != nil {
		if er.err != nil {
			return true, fmt.Errorf("reading the payload: %w", er.err)
		}
		if werr := s.withdrawBroken(ctx, b, key); werr != nil {
			return true, fmt.Errorf("%w (and its record may remain, unreadable: %v)", err, werr)
		}
		return true, err
	}
	if int64(info.Size) != size {
		return true, fmt.Errorf("stored %d bytes, want %d", info.Size, size)
	}
	return true, nil
}

// withdrawTimeout bounds the clean-up of a failed Put, which runs even when
// the Put's context is done.
const withdrawTimeout = 30 * time.Second

// withdrawBroken marks deleted the record of key if the stream does not
// hold every chunk it names, and purges what it does hold. The client
// publishes an object's info message right after its last chunk, without
// waiting for the chunks' acknowledgements, and when one of them is
// refused (a bucket full to its MaxBytes refuses a chunk, yet takes the
// small info message after it) it purges the chunks only: the record
// stays, and Stat would report an object that no read can serve. A record
// whose chunks are all there (another process's Put of the same key) is
// left as it is: the stream stores an info message after the chunks
// published before it, so they are all there by the time it is read.
func (s *Store) withdrawBroken(ctx context.Context, b *bucket, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		om, err := s.readMeta(ctx, b, key)
		if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil // no record, or a deleted one
		}
		if err != nil {
			return err
		}
		var rec struct {
			NUID   string `json:"nuid"`
			Chunks uint64 `json:"chunks"`
		}
		if err := json.Unmarshal(om.raw, &rec); err != nil || rec.NUID == "" {
			return fmt.Errorf("%w: object info without chunk subject", driver.ErrIntegrity)
		}
		subj := fmt.Sprintf("$O.%s.C.%s", b.name, rec.NUID)
		si, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			return err
		}
		if si.State.Subjects[subj] == rec.Chunks {
			return nil
		}
		om.info["deleted"] = json.RawMessage("true")
		om.info["size"], om.info["chunks"], om.info["digest"] = json.RawMessage("0"), json.RawMessage("0"), json.RawMessage(`""`)
		err = s.publishMeta(ctx, om)
		if err == nil {
			return b.stream.Purge(ctx, jetstream.WithPurgeSubject(subj))
		}
		if !isWrongLastSequence(err) || attempt == casAttempts {
			return err
		}
	}
}

// exactReader yields exactly left bytes from r, or fails: a payload shorter
// or longer than announced must not become an object.
type exactReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.ctx.Err(); err != nil {
		e.err = err
		return 0, err
	}
	if e.left == 0 {
		var one [1]byte
		n, err := e.r.Read(one[:])
		if n > 0 {
			e.err = errors.New("payload longer than its announced size")
			return 0, e.err
		}
		if err == nil || err == io.EOF {
			return 0, io.EOF
		}
		e.err = err
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		e.err = fmt.Errorf("payload shorter than its announced size: %w", io.ErrUnexpectedEOF)
		return n, e.err
	case err == io.EOF:
		return n, nil // the next call reports EOF after checking for excess
	case err != nil:
		e.err = err
	}
	return n, err
}

// Get implements driver.Driver. The reader streams the object's chunks; it
// reports a mismatch of the object store's own digest as
// driver.ErrIntegrity, and ReadTimeout without data as an error matching
// nats.ErrTimeout, never a hang.
func (s *Store) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	b, err := s.bucket(ctx, ns, false)
	if err != nil {
		return nil, nil, wrap("get", ns, key, err)
	}
	o := &objectReader{ctx: ctx, ns: ns, key: key, timeout: s.opts.ReadTimeout, b: b}
	_, o.bounded = ctx.Deadline()
	res, err := o.open()
	if err != nil {
		s.forget(ns, err)
		return nil, nil, wrap("get", ns, key, err)
	}
	info, err := res.Info()
	var attrs *driver.Attributes
	if err == nil {
		attrs, err = s.readable(ctx, b, info)
	}
	if err != nil {
		o.close()
		return nil, nil, wrap("get", ns, key, err)
	}
	o.nuid, o.digest, o.size = info.NUID, info.Digest, info.Size
	return o, attrs, nil
}

// readable returns the attributes of the object of info if Get can serve
// it, as far as can be told before reading its chunks: its chunks not aged
// out, attributes that decode and match its size, a digest the client can
// check them against, a size its chunks can hold. Get and Stat both check,
// so that Stat never reports an object that Get refuses.
func (s *Store) readable(ctx context.Context, b *bucket, info *jetstream.ObjectInfo) (*driver.Attributes, error) {
	if err := b.chunksPresent(ctx, info); err != nil {
		return nil, err
	}
	attrs, err := attributes(info, true)
	if err != nil {
		return nil, err
	}
	if err := checkDigestFormat(info); err != nil {
		return nil, err
	}
	if info.Size > trustedSize {
		if err := s.sizeBacked(ctx, b, info); err != nil {
			return nil, err
		}
	}
	return attrs, nil
}

// trustedSize is the largest object size Get takes from the object's
// record without counting its chunks. The record is a message anyone
// allowed on the bucket's subjects can rewrite, and the engine sizes a
// read's buffer by the size it reports: beyond this, the size must be
// backed by chunks the stream holds.
const trustedSize = 8 << 20

// sizeBacked refuses a record whose size its chunks cannot hold: each chunk
// is one message, at most the server's maximum payload.
func (s *Store) sizeBacked(ctx context.Context, b *bucket, info *jetstream.ObjectInfo) error {
	subj := fmt.Sprintf("$O.%s.C.%s", b.name, info.NUID)
	si, err := b.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return err
	}
	chunks := si.State.Subjects[subj]
	maxChunk := int64(1 << 20)
	if nc := s.js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		maxChunk = nc.MaxPayload()
	}
	if held := int64(chunks) * maxChunk; int64(info.Size) > held {
		return fmt.Errorf("%w: the object's record says %d bytes, its %d chunks hold at most %d", driver.ErrIntegrity, info.Size, chunks, held)
	}
	return nil
}

// checkDigestFormat refuses a record whose digest the client could not
// check the chunks against (it would fail the read with a decoding error
// at the end): "SHA-256=" and the base64 of 32 bytes.
func checkDigestFormat(info *jetstream.ObjectInfo) error {
	d, ok := strings.CutPrefix(info.Digest, "SHA-256=")
	if !ok {
		return fmt.Errorf("%w: the object's record has a digest of an unknown form", driver.ErrIntegrity)
	}
	sum, err := base64.URLEncoding.DecodeString(d)
	if err != nil {
		sum, err = base64.StdEncoding.DecodeString(d)
	}
	if err != nil || len(sum) != 32 {
		return fmt.Errorf("%w: the object's record has a malformed digest", driver.ErrIntegrity)
	}
	return nil
}

type objectReader struct {
	ctx     context.Context // the caller's
	ns, key string
	timeout time.Duration
	b       *bucket
	nuid    string // the chunks' subject of the object opened
	digest  string // its stored bytes' digest and size, in its record
	size    uint64
	// bounded: the caller's context has a deadline, which bounds the
	// client's reads. Otherwise each result gets a context of its own
	// that ends timeout after it is opened, and the object is opened
	// again (and read on from where it was) as long as data keeps coming.
	bounded bool

	res    jetstream.ObjectResult
	cancel context.CancelFunc // of res's own context
	read   int64              // bytes returned
}

// open opens the object with a context for the client: the caller's if it
// has a deadline, otherwise one that ends after timeout. Without a deadline
// the client ends the whole read after its API timeout (five seconds), so
// a consumer reading more slowly than that, or an object larger than can
// arrive in that time, failed with a timeout although its chunks kept
// coming.
func (o *objectReader) open() (jetstream.ObjectResult, error) {
	ctx, cancel := o.ctx, context.CancelFunc(func() {})
	if !o.bounded {
		ctx, cancel = context.WithTimeout(o.ctx, o.timeout)
	}
	res, err := o.b.obs.Get(ctx, o.key)
	if err != nil {
		cancel()
		return nil, err
	}
	o.res, o.cancel = res, cancel
	return res, nil
}

func (o *objectReader) close() error {
	if o.res == nil {
		return nil
	}
	err := o.res.Close()
	o.cancel()
	o.res = nil
	return err
}

// reopen opens the object again, once the context of the last opening has
// ended while data was still coming, and skips what was read: the client
// offers no start offset. The bytes skipped count towards the client's
// digest check, as before.
func (o *objectReader) reopen() error {
	o.close()
	res, err := o.open()
	if err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("%w: natsstash: read: the object was deleted while being read", driver.ErrNotFound)
		}
		return wrap("read", o.ns, o.key, err)
	}
	info, err := res.Info()
	if err != nil || info.NUID != o.nuid && !o.same(info) {
		o.close()
		return fmt.Errorf("%w: natsstash: read: the object was replaced while being read", driver.ErrNotFound)
	}
	o.nuid = info.NUID
	if _, err := io.CopyN(io.Discard, res, o.read); err != nil {
		o.close()
		if errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("natsstash: read: no progress for %v: %w", o.timeout, nats.ErrTimeout)
		}
		return wrap("read", o.ns, o.key, err)
	}
	return nil
}

// Read reads from the client's result. The client waits at most until its
// context's deadline for a chunk, returning (0, nil) or a timeout error
// when a wait ends without one; Read waits again while the caller's
// context allows, for ReadTimeout in all. Each time a wait ends
// without data, it checks that the object is still the one opened: a
// Delete (or a replacement) purges the chunks a read still waits for,
// which is driver.ErrNotFound at once rather than a timeout.
func (o *objectReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if o.res == nil {
		return 0, errors.New("natsstash: read after close")
	}
	start := time.Now()
	for {
		n, err := o.res.Read(p)
		o.read += int64(n)
		switch {
		case n > 0 && (err == nil || err == io.EOF):
			return n, err
		case err == io.EOF:
			return 0, err
		case !o.bounded && errors.Is(err, nats.ErrTimeout) && o.ctx.Err() == nil && time.Since(start) < o.timeout:
			// The opening's own context ended, not the caller's, and
			// this Read has not waited for ReadTimeout: read on from a
			// new opening.
			if rerr := o.reopen(); rerr != nil {
				return n, rerr
			}
			if n > 0 {
				return n, nil
			}
			continue
		case err != nil && !isTimeout(err) && !(!o.bounded && errors.Is(err, nats.ErrTimeout) && o.ctx.Err() == nil):
			resumed, gerr := o.resume()
			switch {
			case gerr != nil:
				return n, gerr
			case !resumed:
				return n, wrap("read", o.ns, o.key, err)
			case n > 0:
				return n, nil
			}
			continue
		}
		if resumed, gerr := o.resume(); gerr != nil {
			return 0, gerr
		} else if resumed {
			if n > 0 {
				return n, nil
			}
			continue
		}
		if cerr := o.ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("natsstash: read: %w", cerr)
		}
		if time.Since(start) >= o.timeout {
			return 0, fmt.Errorf("natsstash: read: no data for %v: %w", o.timeout, nats.ErrTimeout)
		}
	}
}

// resume looks at the object being read once a wait ended without data.
// Deleted since it was opened, or replaced by other bytes, it is
// driver.ErrNotFound. Replaced by the same bytes (a second Put of the key
// by another process, which purges the chunks being read), the read goes
// on from the new object, and resume reports true. Still there (or if
// that cannot be told), it reports false.
func (o *objectReader) resume() (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(o.ctx), 5*time.Second)
	defer cancel()
	info, err := o.b.obs.GetInfo(ctx, o.key)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, fmt.Errorf("%w: natsstash: read: the object was deleted while being read", driver.ErrNotFound)
	case err != nil || info.NUID == o.nuid:
		return false, nil
	case !o.same(info):
		return false, fmt.Errorf("%w: natsstash: read: the object was replaced while being read", driver.ErrNotFound)
	}
	if err := o.reopen(); err != nil {
		return false, err
	}
	return true, nil
}

// same reports whether info records the bytes of the object opened: the
// same size and SHA-256 of the stored bytes.
func (o *objectReader) same(info *jetstream.ObjectInfo) bool {
	return !info.Deleted && info.Size == o.size && info.Digest == o.digest && o.digest != ""
}

// isTimeout reports a read deadline that passed without the context being
// done (the client returns the pipe's own timeout error then).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded)
}

func (o *objectReader) Close() error { return o.close() }

// Stat implements driver.Driver.
func (s *Store) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	b, err := s.bucket(ctx, ns, false)
	if err != nil {
		return nil, wrap("stat", ns, key, err)
	}
	info, err := b.obs.GetInfo(ctx, key)
	if err != nil {
		s.forget(ns, err)
		return nil, wrap("stat", ns, key, err)
	}
	a, err := s.readable(ctx, b, info)
	return a, wrap("stat", ns, key, err)
}

// Delete implements driver.Driver: it marks the object deleted and purges
// its chunks. A missing (or already deleted) key is driver.ErrNotFound.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	b, err := s.bucket(ctx, ns, false)
	if err != nil {
		return wrap("delete", ns, key, err)
	}
	if _, err := b.obs.GetInfo(ctx, key); err != nil {
		s.forget(ns, err)
		return wrap("delete", ns, key, err)
	}
	return wrap("delete", ns, key, b.obs.Delete(ctx, key))
}

// UpdateAttributes implements driver.Updater. It rewrites the object's
// info message with a compare-and-set on its sequence, so it never revives
// an object deleted meanwhile; the chunks are not touched.
func (s *Store) UpdateAttributes(ctx context.Context, ns, key string, attrs *driver.Attributes) error {
	enc, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("natsstash: update: attributes: %w", err)
	}
	b, err := s.bucket(ctx, ns, false)
	if err != nil {
		return wrap("update", ns, key, err)
	}
	for attempt := 0; ; attempt++ {
		err := s.updateOnce(ctx, b, key, string(enc))
		if attempt < 5 && isWrongLastSequence(err) {
			continue // changed meanwhile: read it again
		}
		return wrap("update", ns, key, err)
	}
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (s *Store) updateOnce(ctx context.Context, b *bucket, key, attrs string) error {
	subj := fmt.Sprintf("$O.%s.M.%s", b.name, base64.URLEncoding.EncodeToString([]byte(key)))
	m, err := b.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return err
	}
	// Edit the info as raw JSON so fields this client does not know survive.
	var info map[string]json.RawMessage
	if err := json.Unmarshal(m.Data, &info); err != nil {
		return errBadInfo
	}
	var deleted bool
	if d, ok := info["deleted"]; ok {
		_ = json.Unmarshal(d, &deleted)
	}
	if deleted {
		return jetstream.ErrObjectNotFound
	}
	md := map[string]string{}
	if raw, ok := info["metadata"]; ok {
		if err := json.Unmarshal(raw, &md); err != nil || md == nil {
			md = map[string]string{}
		}
	}
	md[MetadataKey] = attrs
	if info["metadata"], err = json.Marshal(md); err != nil {
		return err
	}
	delete(info, "mtime") // the server's timestamp is the modification time
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subj)
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Data = data
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(m.Sequence))
	return err
}

// errBadInfo is an object's info message that is not the JSON object the
// object store writes (json's own error would name Go types).
var errBadInfo = fmt.Errorf("%w: the object's info message is not the object store's JSON", driver.ErrIntegrity)

// casAttempts bounds the compare-and-set rounds of ModifyAttributes and
// DeleteIf when other writers keep changing the object's info meanwhile.
const casAttempts = 64

// objectMeta is the info message of an object, decoded for a
// compare-and-set: the raw fields (so fields this client does not know
// survive), the attributes, and the subject and sequence to set it at.
type objectMeta struct {
	subj  string
	seq   uint64
	raw   []byte // the message as read
	info  map[string]json.RawMessage
	md    map[string]string
	attrs *driver.Attributes
}

func (s *Store) readMeta(ctx context.Context, b *bucket, key string) (*objectMeta, error) {
	subj := fmt.Sprintf("$O.%s.M.%s", b.name, base64.URLEncoding.EncodeToString([]byte(key)))
	m, err := b.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return nil, err
	}
	om := &objectMeta{subj: subj, seq: m.Sequence, raw: m.Data}
	var oi jetstream.ObjectInfo
	if json.Unmarshal(m.Data, &om.info) != nil || json.Unmarshal(m.Data, &oi) != nil {
		return nil, errBadInfo
	}
	if oi.Deleted {
		return nil, jetstream.ErrObjectNotFound
	}
	om.md = map[string]string{}
	if raw, ok := om.info["metadata"]; ok {
		if err := json.Unmarshal(raw, &om.md); err != nil || om.md == nil {
			om.md = map[string]string{}
		}
	}
	if om.attrs, err = attributes(&oi, false); err != nil {
		return nil, err
	}
	return om, nil
}

// publishMeta sets the object's info to om.info, provided it is still the
// message read (a compare-and-set on the subject's last sequence).
func (s *Store) publishMeta(ctx context.Context, om *objectMeta) error {
	var err error
	if om.info["metadata"], err = json.Marshal(om.md); err != nil {
		return err
	}
	delete(om.info, "mtime") // the server's timestamp is the modification time
	data, err := json.Marshal(om.info)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(om.subj)
	msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	msg.Data = data
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(om.seq))
	return err
}

// ModifyAttributes implements driver.Modifier with a compare-and-set on the
// sequence of the object's info message, which holds across processes and
// servers: a concurrent update, delete or replacement makes the write fail
// and fn runs again on what is there now.
func (s *Store) ModifyAttributes(ctx context.Context, ns, key string, fn func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	b, err := s.bucket(ctx, ns, false)
	if err != nil {
		return nil, wrap("update", ns, key, err)
	}
	for attempt := 1; ; attempt++ {
		om, err := s.readMeta(ctx, b, key)
		if err != nil {
			s.forget(ns, err)
			return nil, wrap("update", ns, key, err)
		}
		m := fn(om.attrs)
		if m == nil {
			return om.attrs, nil
		}
		enc, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("natsstash: update %s/%s: attributes: %w", ns, key, err)
		}
		om.md[MetadataKey] = string(enc)
		err = s.publishMeta(ctx, om)
		if err == nil {
			return m, nil
		}
		if !isWrongLastSequence(err) || attempt == casAttempts {
			return nil, wrap("update", ns, key, err)
		}
	}
}

// DeleteIf implements driver.ConditionalDeleter: it marks the object
// deleted with the same compare-and-set as ModifyAttributes, then purges
// its chunks.
func (s *Store) DeleteIf(ctx context.Context, ns, key string, cond func(*driver.Attributes) bool) (bool, error) {
	b, err := s.bucket(ctx, ns, false)
	if err != nil {
		return false, wrap("delete", ns, key, err)
	}
	for attempt := 1; ; attempt++ {
		om, err := s.readMeta(ctx, b, key)
		if err != nil {
			s.forget(ns, err)
			return false, wrap("delete", ns, key, err)
		}
		if !cond(om.attrs) {
			return false, nil
		}
		var nuid string
		_ = json.Unmarshal(om.info["nuid"], &nuid)
		if nuid == "" {
			return false, wrap("delete", ns, key, jetstream.ErrBadObjectMeta)
		}
		om.info["deleted"] = json.RawMessage("true")
		om.info["size"], om.info["chunks"], om.info["digest"] = json.RawMessage("0"), json.RawMessage("0"), json.RawMessage(`""`)
		err = s.publishMeta(ctx, om)
		if err == nil {
			err = b.stream.Purge(ctx, jetstream.WithPurgeSubject(fmt.Sprintf("$O.%s.C.%s", b.name, nuid)))
			return true, wrap("delete", ns, key, err)
		}
		if !isWrongLastSequence(err) || attempt == casAttempts {
			return false, wrap("delete", ns, key, err)
		}
	}
}

// List implements driver.Lister: every live object in every bucket whose
// name starts with the store's prefix and ends with a valid namespace.
func (s *Store) List(ctx context.Context, fn func(ns, key string, attrs *driver.Attributes) error) error {
	lister := s.js.ObjectStoreNames(ctx)
	var namespaces []string
	for name := range lister.Name() {
		ns, ok := strings.CutPrefix(name, s.opts.BucketPrefix)
		if ok && stash.ValidateNamespace(ns) == nil {
			namespaces = append(namespaces, ns)
		}
	}
	if err := lister.Error(); err != nil {
		return fmt.Errorf("natsstash: list buckets: %w", err)
	}
	for _, ns := range namespaces {
		b, err := s.bucket(ctx, ns, false)
		if errors.Is(err, driver.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("natsstash: list %s: %w", s.BucketName(ns), err)
		}
		infos, err := b.obs.List(ctx)
		if errors.Is(err, jetstream.ErrNoObjectsFound) {
			continue
		}
		if err != nil {
			s.forget(ns, err)
			return fmt.Errorf("natsstash: list %s: %w", s.BucketName(ns), mapErr(err))
		}
		for _, info := range infos {
			if info.Deleted || info.Name == "" {
				continue
			}
			a, err := attributes(info, false)
			if err != nil {
				continue // unreadable attributes: never expire, never swept
			}
			if err := fn(ns, info.Name, a); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Close implements driver.Driver. It closes the connection if OpenURL
// opened it; a store from New leaves the caller's connection open.
func (s *Store) Close() error {
	s.mu.Lock()
	s.buckets = map[string]*bucket{}
	s.mu.Unlock()
	if s.nc != nil {
		s.nc.Close()
	}
	return nil
}

// Scheme implements driver.Driver: it is the package's Scheme.
func (*Store) Scheme() string { return Scheme }
