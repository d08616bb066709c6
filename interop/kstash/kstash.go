package kstash

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Defaults, as kstash's.
const (
	// DefaultNamespace is kstash's namespace when a call names none.
	DefaultNamespace = "default"
	// DefaultInlineMax is kstash's max_inline_len: values whose base64 is
	// at most this many characters travel in the address itself.
	DefaultInlineMax = 100
	// SchemeS3 is kstash's scheme for S3 (s3stash.Scheme): share links
	// stand for addresses of this scheme.
	SchemeS3 = "s3"
	// MaxInlineMax bounds WithInlineMax, so that every inline address this
	// package writes, URL-escaped, stays within what stash.ParseAddress
	// reads.
	MaxInlineMax = 16 << 10
)

// A Stash is a kstash value and where it is.
type Stash struct {
	// Address is the kstash address: inline://ns/name?data=..., or
	// scheme://ns/name.<md5 of Encoded>.
	Address stash.Address
	// Value is the value as given to Create, or as Retrieve decoded it
	// (see the package documentation for its Go types).
	Value any
	// Encoded is msgpack(Value): the bytes kstash stores and hashes.
	Encoded []byte
}

// String is the address, as kstash's str(stash.address).
func (s *Stash) String() string { return s.Address.String() }

// MD5 is the lowercase hex md5 of Encoded: the digest of a non-inline
// address.
func (s *Stash) MD5() string { return md5Hex(s.Encoded) }

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// An Option configures a Store.
type Option interface{ apply(*config) }

type config struct {
	scheme    string
	schemeSet bool
	namespace string
	inlineMax int
	now       func() time.Time
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithScheme names the engine backend that Create writes to ("s3", "mem";
// the engine's first backend by default). It must be configured on the
// engine.
func WithScheme(scheme string) Option {
	return optionFunc(func(c *config) { c.scheme, c.schemeSet = scheme, true })
}

// WithNamespace sets the namespace of stashes created without InNamespace
// (DefaultNamespace). On S3 the namespace is the bucket.
func WithNamespace(ns string) Option { return optionFunc(func(c *config) { c.namespace = ns }) }

// WithInlineMax sets the largest base64 encoding, in characters, that is
// inlined in the address (DefaultInlineMax); a negative value disables
// inline stashes, as leaving "inline" out of kstash's Config.backends does.
// It may be at most MaxInlineMax.
func WithInlineMax(n int) Option { return optionFunc(func(c *config) { c.inlineMax = n }) }

// WithClock replaces time.Now for the creation time recorded beside a stash,
// the expiry of the links Share makes, and the check of boto3's version-2
// share links' expiry in Retrieve.
func WithClock(now func() time.Time) Option { return optionFunc(func(c *config) { c.now = now }) }

// A CreateOption configures one Create.
type CreateOption interface{ applyCreate(*createConfig) }

type createConfig struct {
	namespace string
	noInline  bool
}

type createFunc func(*createConfig)

func (f createFunc) applyCreate(c *createConfig) { f(c) }

// InNamespace creates this stash in ns, as kstash.create(..., namespace=ns).
func InNamespace(ns string) CreateOption {
	return createFunc(func(c *createConfig) { c.namespace = ns })
}

// NoInline stores this value in the backend even if it would fit inline.
func NoInline() CreateOption { return createFunc(func(c *createConfig) { c.noInline = true }) }

// Store reads and writes kstash stashes through an engine's backends. It
// is safe for concurrent use.
type Store struct {
	engine *stash.Engine
	cfg    config
	drv    driver.Driver // Create's backend; nil if inline only
}

// locator is implemented by backends that map a namespace and key onto
// another place (s3stash with a shared bucket or a key prefix).
type locator interface {
	Locate(ns, key string) (bucket, objectKey string)
}

// New returns a Store over engine. Reads use every backend of the engine
// (and its trusted link origins); Create writes to one of them (WithScheme).
// A backend that keeps namespaces anywhere but at the top (an s3stash.Store
// made WithBucket or WithPrefix) is refused: kstash's layout is the object
// <name>.<md5> in the bucket <namespace>.
func New(engine *stash.Engine, opts ...Option) (*Store, error) {
	if engine == nil {
		return nil, errors.New("kstash: nil engine")
	}
	c := config{namespace: DefaultNamespace, inlineMax: DefaultInlineMax, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(&c)
	}
	if err := stash.ValidateNamespace(c.namespace); err != nil {
		return nil, fmt.Errorf("kstash: namespace: %w", err)
	}
	if c.inlineMax > MaxInlineMax {
		return nil, fmt.Errorf("kstash: inline limit %d over the maximum of %d", c.inlineMax, MaxInlineMax)
	}
	if !c.schemeSet {
		if s := engine.Schemes(); len(s) > 0 {
			c.scheme = s[0]
		}
	}
	st := &Store{engine: engine, cfg: c}
	if c.scheme != "" {
		d, ok := engine.Backend(c.scheme)
		if !ok {
			return nil, fmt.Errorf("kstash: no %s backend on the engine", c.scheme)
		}
		st.drv = d
	}
	for _, scheme := range engine.Schemes() {
		d, _ := engine.Backend(scheme)
		if l, ok := d.(locator); ok {
			if b, k := l.Locate("ns", "name.0"); b != "ns" || k != "name.0" {
				return nil, fmt.Errorf("kstash: the %s backend keeps namespaces under a shared bucket or key prefix; kstash needs each namespace to be a bucket and each key <name>.<md5>", scheme)
			}
		}
	}
	if st.drv == nil && c.inlineMax < 0 {
		return nil, errors.New("kstash: no backend to create stashes in and inline disabled")
	}
	return st, nil
}

// Create stores value under name as kstash.create(name, value) does and
// returns its stash. The address is kstash's: inline when the base64 of
// msgpack(value) is at most the inline limit, otherwise
// scheme://namespace/name.<md5(msgpack(value))>, with msgpack(value) stored
// as it is (uncompressed) under the key <name>.<md5>; on S3 in the bucket
// named by the namespace, written with If-None-Match: * so that an existing
// object is never replaced. An object already there is read back and must
// hold the same bytes, or Create fails with stash.ErrIntegrity (md5 does not
// resist deliberate collisions). The address is returned only once the
// stash is durably written. kstash has no expiry, so the engine's default
// TTL and TTI do not apply: the stash lives until it is deleted (for
// example by Engine.Delete, or an S3 lifecycle rule).
func (s *Store) Create(ctx context.Context, name string, value any, opts ...CreateOption) (*Stash, error) {
	cc := createConfig{namespace: s.cfg.namespace}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.applyCreate(&cc)
	}
	st, err := s.create(ctx, name, value, &cc)
	if err != nil {
		where := name
		if st != nil {
			where = redact(st.Address.String())
		}
		return nil, fmt.Errorf("kstash: create %s: %w", where, err)
	}
	return st, nil
}

func (s *Store) create(ctx context.Context, name string, value any, cc *createConfig) (*Stash, error) {
	if err := stash.ValidateNamespace(cc.namespace); err != nil {
		return nil, err
	}
	if err := stash.ValidateName(name); err != nil {
		return nil, err
	}
	enc, err := Marshal(value)
	if err != nil {
		return nil, err
	}
	addr := stash.Address{Namespace: cc.namespace, Name: name}
	if s.cfg.inlineMax >= 0 && !cc.noInline && base64.StdEncoding.EncodedLen(len(enc)) <= s.cfg.inlineMax {
		addr.Scheme, addr.Data = stash.SchemeInline, enc
		return &Stash{Address: addr, Value: value, Encoded: enc}, nil
	}
	if s.drv == nil {
		return nil, fmt.Errorf("%w: %d encoded bytes do not fit inline and no backend is configured", stash.ErrTooLarge, len(enc))
	}
	addr.Scheme, addr.Digest = s.cfg.scheme, md5Hex(enc)
	st := &Stash{Address: addr, Value: value, Encoded: enc}
	n := int64(len(enc))
	attrs := &driver.Attributes{Size: n, StoredSize: n, Digest: addr.Digest, Created: s.cfg.now().UTC()}
	err = s.drv.Put(ctx, addr.Namespace, addr.Key(), bytes.NewReader(enc), n, attrs)
	if errors.Is(err, driver.ErrExists) {
		// Load what is there, as kstash does, and check it is ours, stored
		// as kstash reads it: the engine would decompress what a claimstash
		// writer compressed, but a kstash reader gets the stored bytes.
		a, serr := s.drv.Stat(ctx, addr.Namespace, addr.Key())
		switch {
		case serr != nil:
			return st, serr
		case a.Encoding != driver.EncodingIdentity:
			return st, fmt.Errorf("%w: the object already stored under this md5 is %s-compressed, which kstash cannot read", stash.ErrIntegrity, a.Encoding)
		}
		have, rerr := s.engine.Retrieve(ctx, addr.String())
		switch {
		case rerr != nil:
			return st, inner(rerr)
		case !bytes.Equal(have.Data, enc):
			return st, fmt.Errorf("%w: an object with the same md5 but other bytes is already stored", stash.ErrIntegrity)
		}
		return st, nil
	}
	return st, err
}

// Retrieve reads a kstash stash, as kstash.retrieve(address) does, and
// decodes its value. address is a kstash address (inline, or with a
// 32-hex md5 digest) or a kstash share link: a presigned S3 URL whose path
// ends with <name>.<md5>. The stored bytes are checked against the md5
// (kstash itself does not check): a mismatch is stash.ErrIntegrity, bytes
// that do not decode are ErrMalformed (which matches stash.ErrIntegrity
// too). Links are fetched only from the engine's trusted origins
// (a links.Fetcher given with stash.WithLinkFetcher), otherwise stash.ErrForbidden before any request.
// A claimstash address (SHA-256 digest) is stash.ErrInvalidAddress: its
// payload is not a kstash value.
func (s *Store) Retrieve(ctx context.Context, address string) (*Stash, error) {
	st, err := s.retrieve(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("kstash: retrieve %s: %w", redact(address), err)
	}
	return st, nil
}

// redact cuts the query (a presigned signature) off a link for messages,
// and shows an address that is not printable ASCII without spaces quoted
// (escaping control characters and bytes that are not UTF-8) and cut to
// 200 bytes: it may be anything a message carried.
func redact(address string) string {
	if isLink(address) {
		if i := strings.IndexAny(address, "?#"); i >= 0 {
			address = address[:i]
		}
	}
	plain := len(address) <= 200
	for i := 0; plain && i < len(address); i++ {
		plain = address[i] > ' ' && address[i] < 0x7f
	}
	switch {
	case plain:
		return address
	case len(address) > 200:
		return strconv.QuoteToASCII(address[:200]) + "…"
	}
	return strconv.QuoteToASCII(address)
}

func isLink(address string) bool {
	return strings.HasPrefix(address, "https://") || strings.HasPrefix(address, "http://")
}

func (s *Store) retrieve(ctx context.Context, address string) (*Stash, error) {
	if isLink(address) {
		return s.retrieveLink(ctx, address)
	}
	addr, err := parseAddress(address)
	if err != nil {
		return nil, err
	}
	if addr.IsInline() {
		return decoded(addr, addr.Data)
	}
	got, err := s.engine.Retrieve(ctx, address)
	if err != nil {
		return nil, inner(err)
	}
	return decoded(addr, got.Data)
}

// inner strips the engine's operation and address from err, which this
// package's own message repeats, so an error is wrapped once.
func inner(err error) error {
	var se *stash.Error
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

func decoded(addr stash.Address, enc []byte) (*Stash, error) {
	v, err := Unmarshal(enc)
	if err != nil {
		return nil, err
	}
	return &Stash{Address: addr, Value: v, Encoded: enc}, nil
}

// ParseAddress parses a kstash address: stash.ParseAddress, restricted to
// kstash's forms (no scopes; an md5 digest unless inline).
func ParseAddress(address string) (stash.Address, error) {
	a, err := parseAddress(address)
	if err != nil {
		return stash.Address{}, fmt.Errorf("kstash: %w", err)
	}
	return a, nil
}

func parseAddress(address string) (stash.Address, error) {
	a, err := stash.ParseAddress(address)
	if err != nil {
		return a, err
	}
	if len(a.Scopes) > 0 {
		return stash.Address{}, fmt.Errorf("%w: kstash addresses have no scopes", stash.ErrInvalidAddress)
	}
	if !a.IsInline() && a.DigestAlgorithm() != stash.DigestMD5 {
		return stash.Address{}, fmt.Errorf("%w: not a kstash address: its digest is %s, kstash's is a 32-character md5", stash.ErrInvalidAddress, a.DigestAlgorithm())
	}
	return a, nil
}

// retrieveLink reads a kstash share link through the engine, which checks
// the origin, the expiry and the size, and verifies the bytes against the
// md5 that the signed path names. A plain presigned URL is given the
// fragment of a claimstash presigned link (stash=<address>), derived from
// its own path; a fragment is never sent to the server, so the signature
// is untouched.
func (s *Store) retrieveLink(ctx context.Context, raw string) (*Stash, error) {
	if len(raw) > stash.MaxLinkLength {
		return nil, fmt.Errorf("%w: share link longer than %d bytes", stash.ErrInvalidAddress, stash.MaxLinkLength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("%w: share link: want https://host/path, no credentials", stash.ErrInvalidAddress)
	}
	// kstash's links are boto3's presigned URLs, which boto3 signs with S3's
	// query-string authentication version 2 unless told otherwise: their
	// expiry is Expires, in Unix seconds, which the engine's link fetcher does
	// not read, so an expired one went to S3 and came back as a refusal
	// (stash.ErrForbidden) rather than as stash.ErrExpired.
	if exp, ok := sigV2Expiry(u); ok && !s.cfg.now().Before(exp) {
		return nil, fmt.Errorf("%w: share link expired at %s", stash.ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	link := raw
	if u.Fragment == "" && !strings.Contains(raw, "#") {
		addr, err := linkAddress(u)
		if err != nil {
			return nil, err
		}
		link = raw + "#" + url.Values{"stash": {addr.String()}}.Encode()
	}
	got, err := s.engine.Retrieve(ctx, link)
	if err != nil {
		return nil, inner(err)
	}
	if got.Address.DigestAlgorithm() != stash.DigestMD5 || len(got.Address.Scopes) > 0 {
		return nil, fmt.Errorf("%w: share link of a claimstash stash, not a kstash one", stash.ErrInvalidAddress)
	}
	return decoded(got.Address, got.Data)
}

// sigV2Expiry is the expiry of a URL presigned with S3's signature version
// 2 (AWSAccessKeyId, Signature and Expires in the query).
func sigV2Expiry(u *url.URL) (time.Time, bool) {
	q := u.Query()
	if q.Get("AWSAccessKeyId") == "" || q.Get("Signature") == "" {
		return time.Time{}, false
	}
	secs, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}

// linkAddress reads the address a presigned S3 URL stands for from its
// path: /<bucket>/<name>.<md5> (path style) or /<name>.<md5> with the
// bucket as the first label of the host (virtual-hosted style).
func linkAddress(u *url.URL) (stash.Address, error) {
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	var ns, last string
	switch len(segs) {
	case 1:
		ns, _, _ = strings.Cut(u.Hostname(), ".")
		last = segs[0]
	case 2:
		ns, last = segs[0], segs[1]
	default:
		return stash.Address{}, fmt.Errorf("%w: share link path is not /<bucket>/<name>.<md5>", stash.ErrInvalidAddress)
	}
	if stash.ValidateNamespace(ns) != nil {
		ns = DefaultNamespace // only the key is checked against the signed path
	}
	return parseAddress(SchemeS3 + "://" + ns + "/" + last)
}

// Share returns a kstash share link for address, valid for ttl
// (stash.DefaultShareTTL if zero): a plain presigned GET of the object, as
// kstash's stash.share(ttl_sec=...) makes, whose path ends with
// <name>.<md5> and which carries no fragment. Only backends that presign
// (S3) can share; others are stash.ErrUnsupported, as are inline
// addresses. A missing stash is stash.ErrNotFound.
func (s *Store) Share(ctx context.Context, address string, ttl time.Duration) (string, error) {
	link, err := s.share(ctx, address, ttl)
	if err != nil {
		return "", fmt.Errorf("kstash: share %s: %w", redact(address), err)
	}
	return link, nil
}

func (s *Store) share(ctx context.Context, address string, ttl time.Duration) (string, error) {
	if ttl == 0 {
		ttl = stash.DefaultShareTTL
	}
	if ttl < 0 || ttl > stash.MaxShareTTL {
		return "", fmt.Errorf("share lifetime %v outside (0, %v]", ttl, stash.MaxShareTTL)
	}
	addr, err := parseAddress(address)
	if err != nil {
		return "", err
	}
	if addr.IsInline() {
		return "", fmt.Errorf("%w: an inline address carries its value: share the address itself", stash.ErrUnsupported)
	}
	d, ok := s.engine.Backend(addr.Scheme)
	if !ok {
		return "", fmt.Errorf("%w: no backend configured for scheme %q", stash.ErrUnsupported, addr.Scheme)
	}
	signer, ok := d.(driver.Signer)
	if !ok {
		return "", fmt.Errorf("%w: kstash share links are presigned URLs, which the %s backend cannot make", stash.ErrUnsupported, addr.Scheme)
	}
	if _, err := s.engine.Stat(ctx, address); err != nil {
		return "", inner(err)
	}
	link, err := signer.SignURL(ctx, driver.LinkRequest{Scheme: addr.Scheme, Namespace: addr.Namespace, Key: addr.Key(), Expires: s.cfg.now().Add(ttl)})
	if err != nil {
		return "", err
	}
	u, err := url.Parse(link)
	if err != nil || u.Fragment != "" || !strings.HasSuffix(u.Path, "/"+addr.Key()) {
		return "", errors.New("the backend's presigned URL does not end with <name>.<md5>")
	}
	return link, nil
}
