package s3stash

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Defaults and limits.
const (
	// DefaultPartSize is the multipart part size and the ranged-read chunk
	// size: objects up to this size take one PutObject and one GetObject.
	DefaultPartSize = 8 << 20
	// MinPartSize is the smallest part S3 accepts (but for the last one).
	MinPartSize = 5 << 20
	// DefaultConcurrency is how many parts are uploaded or fetched at once.
	// Memory in flight per Put or Get is at most Concurrency × PartSize.
	DefaultConcurrency = 4
	// MaxMetadataSize is S3's limit on user metadata (keys and values), which
	// bounds the encoded attributes, caller metadata included.
	MaxMetadataSize = 2 << 10
	// MaxPresignTTL is the longest lifetime of a SigV4 presigned URL.
	MaxPresignTTL = 7 * 24 * time.Hour

	// metaKey is the user metadata key (x-amz-meta-claimstash) that holds the
	// JSON-encoded driver.Attributes.
	metaKey  = "claimstash"
	maxParts = 10000

	// DigestMetadataKey is the user metadata key (x-amz-meta-claimstash-sha256)
	// that holds the hex SHA-256 of the payload, the digest of its address,
	// on every object: a client without claimstash verifies what it
	// downloaded against it (after undoing Content-Encoding). S3's own
	// checksum cannot serve: it covers the stored bytes, which are
	// compressed for compressed stashes, and for multipart objects it is a
	// checksum of the parts' checksums (COMPOSITE), not of the object.
	DigestMetadataKey = "claimstash-sha256"
)

// Options are of two kinds (franz-go's style), so that one passed where it
// does not apply is a compile error: an Option configures the store and is
// accepted by New and Open; a ClientOption configures the S3 client that
// Open builds, and New, which is given a client, does not accept it. Both
// are OpenOptions. The zero configuration means the documented defaults, and
// the URL opener maps query parameters onto the same settings.
type (
	// OpenOption configures Open.
	OpenOption interface{ applyOpen(*settings) }
	// Option configures the store, for New and Open.
	Option interface {
		OpenOption
		applyStore(*settings)
	}
	// ClientOption configures the client Open builds.
	ClientOption interface {
		OpenOption
		clientOption()
	}
)

type storeOption func(*settings)

func (f storeOption) applyOpen(c *settings)  { f(c) }
func (f storeOption) applyStore(c *settings) { f(c) }

type clientOption func(*settings)

func (f clientOption) applyOpen(c *settings) { f(c) }
func (clientOption) clientOption()           {}

// WithRegion overrides the region of the default chain (AWS_REGION, the
// shared config). URL: region=.
func WithRegion(region string) ClientOption {
	return clientOption(func(c *settings) { c.Region = region })
}

// WithEndpoint sets the base URL of an S3-compatible store
// ("http://127.0.0.1:9000" for MinIO). URL: endpoint=.
func WithEndpoint(endpoint string) ClientOption {
	return clientOption(func(c *settings) { c.Endpoint = endpoint })
}

// PathStyle addresses buckets as endpoint/bucket/key instead of
// bucket.endpoint/key; S3-compatible stores usually need it.
// URL: path_style=true.
func PathStyle() ClientOption { return clientOption(func(c *settings) { c.PathStyle = true }) }

// WithMaxAttempts bounds the SDK's attempts per request, with exponential
// backoff and jitter between them (the SDK's default is 3). The client
// Open builds has no client-wide retry quota: after an outage, requests are
// retried as before it (see the package documentation). URL: max_attempts=.
func WithMaxAttempts(n int) ClientOption {
	return clientOption(func(c *settings) { c.MaxAttempts = n })
}

// WithRetryMode sets aws.RetryModeStandard (the default) or
// aws.RetryModeAdaptive, which also rate-limits the client when the store
// throttles. URL: retry_mode=.
func WithRetryMode(m aws.RetryMode) ClientOption {
	return clientOption(func(c *settings) { c.RetryMode = m })
}

// WithBucket keeps every namespace in this one bucket, as the first segment
// of its keys: <bucket>/<prefix><namespace>/<key>. Without it each
// namespace is a bucket of its own: <namespace>/<prefix><key>; namespaces
// must then be valid bucket names (3 to 63 characters). URL: bucket=.
func WithBucket(bucket string) Option { return storeOption(func(c *settings) { c.Bucket = bucket }) }

// WithPrefix prepends prefix to every key, so one bucket can host several
// stores (or other data). A missing trailing slash is not added.
// URL: prefix=.
func WithPrefix(prefix string) Option { return storeOption(func(c *settings) { c.Prefix = prefix }) }

// WithPartSize sets the multipart part size and the ranged-read chunk size
// (DefaultPartSize; at least MinPartSize). It grows for objects that would
// need more than 10,000 parts. URL: part_size= (bytes).
func WithPartSize(n int64) Option { return storeOption(func(c *settings) { c.PartSize = n }) }

// WithConcurrency sets how many parts of one object are transferred at once
// (DefaultConcurrency). URL: concurrency=.
func WithConcurrency(n int) Option { return storeOption(func(c *settings) { c.Concurrency = n }) }

// WithBuckets names the namespaces List, and so Engine.Sweep, walks when
// each namespace is a bucket. Without it List walks every bucket
// ListBuckets returns to these credentials; with WithBucket it walks that
// bucket's prefix and ignores this. URL: buckets=a,b.
func WithBuckets(buckets ...string) Option {
	return storeOption(func(c *settings) { c.Buckets = append([]string(nil), buckets...) })
}

// CreateBuckets makes Put create a missing bucket (namespace) instead of
// failing with ErrNotFound. Meant for development stores.
// URL: create_buckets=true.
func CreateBuckets() Option { return storeOption(func(c *settings) { c.CreateBuckets = true }) }

// WithoutConditionalWrites is for a store that does not implement
// conditional writes: one that answers If-None-Match with 501 Not
// Implemented, or ignores it and replaces the object. Writes then carry no
// If-None-Match, and Put asks with a HEAD first, so content stored already
// is never written over (its expiry kept, or extended by the engine). Two
// writers of the same new content at the same moment may still both write
// it: the bytes are the same, and the later write's expiry is the one
// kept. URL: conditional_writes=false.
func WithoutConditionalWrites() Option {
	return storeOption(func(c *settings) { c.NoConditionalWrites = true })
}

// settings is what the options set. The URL opener maps query parameters
// onto the same fields.
type settings struct {
	// Region, Endpoint, PathStyle, MaxAttempts and RetryMode configure the
	// client that Open builds (ClientOption).

	// Region overrides the region of the default chain (AWS_REGION, the
	// shared config). URL: region=.
	Region string
	// Endpoint is the base URL of an S3-compatible store
	// ("http://127.0.0.1:9000" for MinIO). URL: endpoint=.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key; S3-compatible stores usually need it.
	// URL: path_style=true.
	PathStyle bool
	// MaxAttempts bounds the SDK's attempts per request, with exponential
	// backoff and jitter between them (0: the SDK default, 3).
	// URL: max_attempts=.
	MaxAttempts int
	// RetryMode is aws.RetryModeStandard (the default) or
	// aws.RetryModeAdaptive, which also rate-limits the client when the
	// store throttles. URL: retry_mode=.
	RetryMode aws.RetryMode

	// Bucket, when set, keeps every namespace in this one bucket, as the
	// first segment of its keys: <Bucket>/<Prefix><namespace>/<key>. Empty
	// (the default) makes each namespace a bucket of its own:
	// <namespace>/<Prefix><key>; namespaces must then be valid bucket names
	// (3 to 63 characters). URL: bucket=.
	Bucket string
	// Prefix is prepended to every key, so one bucket can host several
	// stores (or other data). A missing trailing slash is not added.
	// URL: prefix=.
	Prefix string
	// PartSize is the multipart part size and the ranged-read chunk size
	// (DefaultPartSize; at least MinPartSize). It grows for objects that
	// would need more than 10,000 parts. URL: part_size= (bytes).
	PartSize int64
	// Concurrency is how many parts of one object are transferred at once
	// (DefaultConcurrency). URL: concurrency=.
	Concurrency int
	// Buckets are the namespaces List, and so Engine.Sweep, walks, when each
	// namespace is a bucket. Empty means every bucket ListBuckets returns
	// to these credentials. With Bucket set, List walks that bucket's
	// prefix and Buckets is ignored. URL: buckets=a,b.
	Buckets []string
	// CreateBuckets makes Put create a missing bucket (namespace) instead
	// of failing with ErrNotFound. Meant for development stores.
	// URL: create_buckets=true.
	CreateBuckets bool
	// NoConditionalWrites leaves If-None-Match off every write, for a
	// store that does not implement it; Put then asks with a HEAD first.
	// URL: conditional_writes=false.
	NoConditionalWrites bool
}

// Store is the S3 backend. It is safe for concurrent use. The zero value is
// not usable; call New.
type Store struct {
	client   *s3.Client
	presign  *s3.PresignClient
	opts     settings
	partPool sync.Pool // *[]byte of opts.PartSize
	// locks serialise the read-modify-writes of one key's metadata
	// (ModifyAttributes, DeleteIf, Delete) within this process; see
	// ModifyAttributes for why S3 offers nothing that holds across them.
	locks [64]sync.Mutex
	// rangeHook, for the tests, runs before each ranged GET after the
	// first, with the range's offset.
	rangeHook func(off int64)
}

var (
	_ driver.Driver  = (*Store)(nil)
	_ driver.Updater = (*Store)(nil)
	_ driver.Lister  = (*Store)(nil)
	_ driver.Signer  = (*Store)(nil)

	_ driver.ExclusivePutter = (*Store)(nil)

	_ driver.Modifier           = (*Store)(nil)
	_ driver.ConditionalDeleter = (*Store)(nil)
)

// Scheme is the address and URL scheme of this backend: addresses
// s3://namespace/..., backend URLs s3://...
const Scheme = "s3"

func init() {
	stash.RegisterScheme(Scheme, func(ctx context.Context, u *url.URL) (driver.Driver, error) { return OpenURL(ctx, u) })
}

// OpenURL opens a store from a URL of the form "s3://?param=value..." (see
// the package documentation) as Open does; the engine's WithBackendURL
// calls it for s3:// URLs.
func OpenURL(ctx context.Context, u *url.URL) (*Store, error) {
	o, err := optionsFromURL(u)
	if err != nil {
		return nil, err
	}
	return openConfig(ctx, *o)
}

// New returns a Store over client. Credentials, region, endpoint and retries
// are the client's.
func New(client *s3.Client, opts ...Option) (*Store, error) {
	var o settings
	for _, opt := range opts {
		if opt == nil {
			continue // a nil option is none
		}
		opt.applyStore(&o)
	}
	return newStore(client, o)
}

func newStore(client *s3.Client, o settings) (*Store, error) {
	if client == nil {
		return nil, errors.New("s3stash: nil client")
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	s := &Store{client: client, presign: s3.NewPresignClient(client), opts: o}
	size := o.PartSize
	s.partPool.New = func() any { b := make([]byte, size); return &b }
	return s, nil
}

// Open builds a client from the SDK's default chain (config.LoadDefaultConfig:
// environment, shared config and credentials files, IAM roles) with the
// client fields of opts applied, and returns a Store over it.
func Open(ctx context.Context, opts ...OpenOption) (*Store, error) {
	var o settings
	for _, opt := range opts {
		if opt == nil {
			continue // a nil option is none
		}
		opt.applyOpen(&o)
	}
	return openConfig(ctx, o)
}

func openConfig(ctx context.Context, o settings) (*Store, error) {
	lo := []func(*config.LoadOptions) error{
		config.WithLogger(sdkLogger{}),
		config.WithHTTPClient(newHTTPClient()),
	}
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.MaxAttempts > 0 {
		lo = append(lo, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	if o.RetryMode != "" {
		lo = append(lo, config.WithRetryMode(o.RetryMode))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("s3stash: loading AWS config: %w", err)
	}
	mode, attempts := cfg.RetryMode, cfg.RetryMaxAttempts
	cfg.Retryer = func() aws.Retryer { return newRetryer(mode, attempts) }
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
	})
	return newStore(client, o)
}

// IdleConnsPerHost is how many idle connections to the store the clients
// Open builds keep, against the SDK's default of 10: a consumer that reads
// ahead on several partitions (ccsarama's read-ahead times the partitions it
// holds), or a Get in parallel ranges, has more requests in flight than
// that, and every request beyond the pool opens a new connection.
const IdleConnsPerHost = 64

// newHTTPClient is the SDK's buildable client (its timeouts and TLS
// settings) with IdleConnsPerHost idle connections kept per host.
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = IdleConnsPerHost
		if tr.MaxIdleConns < IdleConnsPerHost {
			tr.MaxIdleConns = IdleConnsPerHost
		}
	})
}

// newRetryer is the retryer of the clients Open builds: the SDK's, in mode
// (standard unless adaptive) with attempts per request (0: the SDK's 3),
// without the SDK's retry quota. That quota is one token bucket per client
// that every retry draws from (500 tokens, 14 a retry) and only successes
// refill, one token each: an outage of a few dozen failed retries empties
// it, and after the store is back every error fails at once, unretried,
// until hundreds of requests have succeeded. Each request's attempts stay
// bounded, with exponential backoff and jitter between them; adaptive mode
// still slows the client down when the store throttles.
func newRetryer(mode aws.RetryMode, attempts int) aws.Retryer {
	std := func(o *retry.StandardOptions) {
		o.RateLimiter = ratelimit.None
		if attempts > 0 {
			o.MaxAttempts = attempts
		}
	}
	if mode == aws.RetryModeAdaptive {
		return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, std)
		})
	}
	return retry.NewStandard(std)
}

// sdkLogger sends what the SDK logs (such as its warning that it falls back
// to IMDSv1 while it looks for credentials off EC2) to slog.Default at debug
// level, instead of the standard error that the SDK writes to by default.
type sdkLogger struct{}

func (sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	l := slog.Default()
	if !l.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.Debug("s3stash: AWS SDK: "+fmt.Sprintf(format, v...), "classification", string(c))
}

// check refuses settings no store can work with, as ErrInvalidAddress
// (they are a bad backend URL, or options as bad); zero values are the
// defaults.
func (o *settings) check() error {
	var err error
	switch {
	case o.PartSize != 0 && o.PartSize < MinPartSize:
		err = fmt.Errorf("part size %d under the minimum of %d", o.PartSize, MinPartSize)
	case o.Concurrency < 0:
		err = fmt.Errorf("concurrency %d under 1", o.Concurrency)
	case o.MaxAttempts < 0:
		err = fmt.Errorf("max attempts %d under 0", o.MaxAttempts)
	case o.RetryMode != "" && o.RetryMode != aws.RetryModeStandard && o.RetryMode != aws.RetryModeAdaptive:
		err = fmt.Errorf("unknown retry mode %q (want standard or adaptive)", o.RetryMode)
	case o.Endpoint != "":
		if cerr := checkEndpoint(o.Endpoint); cerr != nil {
			err = fmt.Errorf("endpoint %q: %v", o.Endpoint, cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: s3stash: %w", driver.ErrInvalidAddress, err)
	}
	return nil
}

// checkEndpoint refuses an endpoint that is not an http or https URL with
// a well-formed host and port.
func checkEndpoint(v string) error {
	eu, err := url.Parse(v)
	if err != nil {
		return err
	}
	if eu.Scheme != "http" && eu.Scheme != "https" || eu.Host == "" {
		return errors.New("want an http or https URL")
	}
	return driver.CheckHost(eu)
}

// optionsFromURL maps "s3://?region=..&endpoint=.." onto the options, refusing
// anything it does not know.
func optionsFromURL(u *url.URL) (*settings, error) {
	if u.Scheme != Scheme || u.Host != "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%w: s3stash: URL %q: want s3://?param=value... (buckets are the addresses' namespaces)", driver.ErrInvalidAddress, u.Redacted())
	}
	params, err := driver.URLParams(u)
	if err != nil {
		return nil, fmt.Errorf("%w: s3stash: %v", driver.ErrInvalidAddress, err)
	}
	o := &settings{}
	for k, v := range params {
		var err error
		switch k {
		case "region":
			o.Region = v
		case "endpoint":
			err = checkEndpoint(v)
			o.Endpoint = v
		case "path_style":
			o.PathStyle, err = strconv.ParseBool(v)
		case "max_attempts":
			o.MaxAttempts, err = strconv.Atoi(v)
		case "retry_mode":
			o.RetryMode = aws.RetryMode(v)
		case "bucket":
			o.Bucket = v
		case "prefix":
			o.Prefix = v
		case "part_size":
			o.PartSize, err = strconv.ParseInt(v, 10, 64)
		case "concurrency":
			o.Concurrency, err = strconv.Atoi(v)
		case "buckets":
			for b := range strings.SplitSeq(v, ",") {
				if b != "" {
					o.Buckets = append(o.Buckets, b)
				}
			}
		case "create_buckets":
			o.CreateBuckets, err = strconv.ParseBool(v)
		case "conditional_writes":
			var on bool
			on, err = strconv.ParseBool(v)
			o.NoConditionalWrites = !on
		default:
			return nil, fmt.Errorf("%w: s3stash: unknown URL parameter %q", driver.ErrInvalidAddress, k)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: s3stash: URL parameter %s=%q: %v", driver.ErrInvalidAddress, k, v, err)
		}
	}
	return o, nil
}

// Client returns the S3 client the store uses.
func (s *Store) Client() *s3.Client { return s.client }

// Locate returns the bucket and object key that hold key of namespace ns:
// bucket ns and key prefix+key, or with WithBucket set, that bucket and
// key Prefix+ns+"/"+key.
func (s *Store) Locate(ns, key string) (bucket, objectKey string) {
	if s.opts.Bucket != "" {
		return s.opts.Bucket, s.opts.Prefix + ns + "/" + key
	}
	return ns, s.opts.Prefix + key
}

// checkNamespace refuses, with driver.ErrInvalidAddress and before any
// request, a namespace that cannot name a bucket when namespaces are
// buckets (without WithBucket): S3 answers InvalidBucketName, or a bare
// 400 to a HEAD, which no caller could tell from a failure of the store.
// The address grammar leaves only the length (3 to 63 characters) and the
// names S3 reserves to check.
func (s *Store) checkNamespace(ns string) error {
	if s.opts.Bucket != "" {
		return nil
	}
	switch {
	case len(ns) < 3 || len(ns) > 63:
		return fmt.Errorf("%w: s3stash: the namespace cannot be a bucket name (3 to 63 characters): set a bucket to keep every namespace in it", driver.ErrInvalidAddress)
	case strings.HasPrefix(ns, "xn--"), strings.HasPrefix(ns, "sthree-"), strings.HasPrefix(ns, "amzn-s3-demo-"),
		strings.HasSuffix(ns, "-s3alias"), strings.HasSuffix(ns, "--ol-s3"), strings.HasSuffix(ns, "--x-s3"), strings.HasSuffix(ns, "--table-s3"):
		return fmt.Errorf("%w: s3stash: the namespace is a bucket name S3 reserves", driver.ErrInvalidAddress)
	}
	return nil
}

// Close implements driver.Driver. The client holds no resources of its own.
func (s *Store) Close() error { return nil }

// ---- attributes as user metadata ----

// encodeAttrs returns the user metadata that records attrs: one JSON value,
// with every non-ASCII character escaped so it travels as an HTTP header.
func encodeAttrs(a *driver.Attributes) (map[string]string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("s3stash: encoding attributes: %w", err)
	}
	v := asciiJSON(b)
	meta := map[string]string{metaKey: v}
	if a.Digest != "" {
		meta[DigestMetadataKey] = a.Digest
	}
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	if n > MaxMetadataSize {
		return nil, fmt.Errorf("%w: s3stash: attributes take %d bytes of user metadata, over S3's limit of %d (trim the stash metadata)", driver.ErrTooLarge, n, MaxMetadataSize)
	}
	return meta, nil
}

func asciiJSON(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r < utf8.RuneSelf {
			sb.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String()
}

// decodeAttrs reads the attributes back. An object written by another tool
// (no claimstash metadata) is described by what S3 knows of it: its size
// and time; the engine still verifies its bytes against the address.
func decodeAttrs(meta map[string]string, size *int64, modified *time.Time, contentType *string) (*driver.Attributes, error) {
	v, ok := meta[metaKey]
	if !ok {
		a := &driver.Attributes{Size: aws.ToInt64(size), StoredSize: aws.ToInt64(size), ContentType: aws.ToString(contentType)}
		if modified != nil {
			a.Created = *modified
		}
		return a, nil
	}
	a, err := driver.DecodeAttributes([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("%w: s3stash: undecodable attributes in x-amz-meta-%s: %v", driver.ErrIntegrity, metaKey, err)
	}
	if size != nil && a.StoredSize != *size {
		return nil, fmt.Errorf("%w: s3stash: object holds %d bytes, its attributes say %d", driver.ErrIntegrity, *size, a.StoredSize)
	}
	return a, nil
}

// ---- errors ----

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}

func isNoSuchBucket(err error) bool { return apiCode(err) == "NoSuchBucket" }

func isPreconditionFailed(err error) bool {
	return apiCode(err) == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed
}

// wrap gives an SDK error the operation and object it concerns and maps it
// onto the driver's sentinels; the SDK error stays reachable with errors.As
// (smithy.APIError for the S3 code: AccessDenied, SlowDown, ...).
func wrap(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	// The engine names the address; the driver says what S3 answered.
	switch {
	case isNotFound(err):
		return fmt.Errorf("%w: s3stash: %s: %w", driver.ErrNotFound, op, err)
	case op == "put" && isPreconditionFailed(err):
		return fmt.Errorf("%w: s3stash: %s: %w", driver.ErrExists, op, err)
	}
	return fmt.Errorf("s3stash: %s: %w", op, err)
}

// ---- requests ----

// checksummed is the option of every request that carries a body with a
// checksum header (x-amz-checksum-sha256 or -crc32c): the body is sent as
// UNSIGNED-PAYLOAD. The checksum header is signed, and S3 refuses a body
// that does not match it, while neither the client nor the server hashes
// the bytes a second time for SigV4. With SHA-256 the bytes are as
// protected as with a signed payload. A part's CRC32C catches corruption,
// not a forger who rewrites the body on an unencrypted link (TLS does, and
// such bytes could not be read back anyway: Retrieve checks every payload
// against the SHA-256 in its address).
var checksummed = s3.WithAPIOptions(func(st *middleware.Stack) error {
	if _, ok := st.Finalize.Get(computePayloadHashID); !ok {
		return nil // already unsigned
	}
	_, err := st.Finalize.Swap(computePayloadHashID, &v4.UnsignedPayload{})
	return err
})

// computePayloadHashID is the ID of v4.ComputePayloadSHA256.
var computePayloadHashID = (&v4.ComputePayloadSHA256{}).ID()

func b64(sum []byte) *string { return aws.String(base64.StdEncoding.EncodeToString(sum)) }

// ensureBucket creates a bucket that a request found missing; a concurrent
// creation (BucketAlreadyOwnedByYou) is success.
func (s *Store) ensureBucket(ctx context.Context, bucket string) error {
	_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	switch apiCode(err) {
	case "", "BucketAlreadyOwnedByYou":
		return nil
	}
	return fmt.Errorf("s3stash: creating bucket %s: %w", bucket, err)
}

// Get implements driver.Driver. Objects larger than the part size are read
// with parallel ranged GETs, in order, at most Concurrency parts ahead,
// each pinned with If-Match to the ETag of the first (see rangeReader).
func (s *Store) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	if err := s.checkNamespace(ns); err != nil {
		return nil, nil, err
	}
	bk, k := s.Locate(ns, key)
	first := s.opts.PartSize
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(bk), Key: aws.String(k),
		Range: aws.String(fmt.Sprintf("bytes=0-%d", first-1)),
	}, quietRanges)
	if err != nil && (apiCode(err) == "InvalidRange" || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable) {
		// An empty object has no byte 0.
		out, err = s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bk), Key: aws.String(k)}, quietRanges)
	}
	if err != nil {
		return nil, nil, wrap("get", ns, key, err)
	}
	total, err := objectSize(out)
	if err != nil {
		out.Body.Close()
		return nil, nil, fmt.Errorf("s3stash: get %s/%s: %w", ns, key, err)
	}
	attrs, err := decodeAttrs(out.Metadata, &total, out.LastModified, out.ContentType)
	if err != nil {
		out.Body.Close()
		return nil, nil, err
	}
	got := aws.ToInt64(out.ContentLength)
	if got >= total {
		return out.Body, attrs, nil
	}
	return s.newRangeReader(ctx, bk, k, out.Body, got, total, out.ETag, attrs), attrs, nil
}

// quietRanges keeps the SDK from logging, for every ranged GET, that it did
// not validate a checksum: ranges have none, and the engine verifies the
// whole payload against its digest.
func quietRanges(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }

// objectSize is the whole object's size: from Content-Range on a ranged
// answer, Content-Length otherwise.
func objectSize(out *s3.GetObjectOutput) (int64, error) {
	cr := aws.ToString(out.ContentRange)
	if cr == "" {
		return aws.ToInt64(out.ContentLength), nil
	}
	_, tot, ok := strings.Cut(cr, "/")
	n, err := strconv.ParseInt(tot, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("unexpected Content-Range %q", cr)
	}
	return n, nil
}

// Stat implements driver.Driver.
func (s *Store) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	if err := s.checkNamespace(ns); err != nil {
		return nil, err
	}
	bk, k := s.Locate(ns, key)
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
	if err != nil {
		return nil, wrap("stat", ns, key, err)
	}
	return decodeAttrs(out.Metadata, out.ContentLength, out.LastModified, out.ContentType)
}

// Delete implements driver.Driver. S3 deletes missing keys silently, so
// Delete asks first: a missing key is ErrNotFound.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if err := s.checkNamespace(ns); err != nil {
		return err
	}
	mu := s.keyLock(ns, key)
	mu.Lock()
	defer mu.Unlock()
	bk, k := s.Locate(ns, key)
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)}); err != nil {
		return wrap("delete", ns, key, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
	return wrap("delete", ns, key, err)
}

// UpdateAttributes implements driver.Updater: a CopyObject of the object
// onto itself that replaces its metadata (S3-compatible stores do this
// without moving the bytes where they can).
func (s *Store) UpdateAttributes(ctx context.Context, ns, key string, attrs *driver.Attributes) error {
	if err := s.checkNamespace(ns); err != nil {
		return err
	}
	mu := s.keyLock(ns, key)
	mu.Lock()
	defer mu.Unlock()
	bk, k := s.Locate(ns, key)
	return wrap("update", ns, key, s.copyAttrs(ctx, bk, k, attrs, nil))
}

// copyAttrs replaces the metadata of an object by copying it onto itself,
// if its ETag is still etag (when given).
func (s *Store) copyAttrs(ctx context.Context, bk, k string, attrs *driver.Attributes, etag *string) error {
	meta, err := encodeAttrs(attrs)
	if err != nil {
		return err
	}
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(bk),
		Key:               aws.String(k),
		CopySource:        aws.String(url.PathEscape(bk) + "/" + escapeKey(k)),
		CopySourceIfMatch: etag,
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          meta,
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	}
	if ct := contentType(attrs); ct != "" {
		in.ContentType = aws.String(ct)
	}
	if ce := contentEncoding(attrs); ce != "" {
		in.ContentEncoding = aws.String(ce)
	}
	_, err = s.client.CopyObject(ctx, in)
	return err
}

func (s *Store) keyLock(ns, key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

// ModifyAttributes implements driver.Modifier: a HEAD, then a CopyObject of
// the object onto itself with the new metadata, conditional on the ETag
// read (so it never revives a deleted object: a missing source is
// ErrNotFound). S3 has no compare-and-swap on metadata alone: an object's
// ETag is the digest of its bytes, which a metadata copy does not change,
// so two copies conditional on the same ETag both succeed. The
// read-modify-write is therefore atomic within this process (a per-key
// lock, shared with DeleteIf and Delete); across processes, concurrent
// extensions of the same content are last-writer-wins, as they were before.
func (s *Store) ModifyAttributes(ctx context.Context, ns, key string, fn func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	if err := s.checkNamespace(ns); err != nil {
		return nil, err
	}
	mu := s.keyLock(ns, key)
	mu.Lock()
	defer mu.Unlock()
	bk, k := s.Locate(ns, key)
	for attempt := 1; ; attempt++ {
		out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
		if err != nil {
			return nil, wrap("update", ns, key, err)
		}
		have, err := decodeAttrs(out.Metadata, out.ContentLength, out.LastModified, out.ContentType)
		if err != nil {
			return nil, err
		}
		m := fn(have)
		if m == nil {
			return have, nil
		}
		err = s.copyAttrs(ctx, bk, k, m, out.ETag)
		if err == nil {
			return m, nil
		}
		if !isPreconditionFailed(err) || attempt == 3 {
			return nil, wrap("update", ns, key, err)
		}
	}
}

// DeleteIf implements driver.ConditionalDeleter: a HEAD and a DeleteObject
// under the key's lock (see ModifyAttributes for what that covers).
func (s *Store) DeleteIf(ctx context.Context, ns, key string, cond func(*driver.Attributes) bool) (bool, error) {
	if err := s.checkNamespace(ns); err != nil {
		return false, err
	}
	mu := s.keyLock(ns, key)
	mu.Lock()
	defer mu.Unlock()
	bk, k := s.Locate(ns, key)
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
	if err != nil {
		return false, wrap("delete", ns, key, err)
	}
	have, err := decodeAttrs(out.Metadata, out.ContentLength, out.LastModified, out.ContentType)
	if err != nil {
		return false, err
	}
	if !cond(have) {
		return false, nil
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bk), Key: aws.String(k)})
	return err == nil, wrap("delete", ns, key, err)
}

func escapeKey(k string) string {
	segs := strings.Split(k, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// contentType is the Content-Type stored on the object: the payload's, also
// when it is stored compressed (Content-Encoding then says how), so that
// raw clients (aws s3api get-object, a presigned link) see the real type.
func contentType(a *driver.Attributes) string { return a.ContentType }

// contentEncoding is the Content-Encoding stored on the object: "zstd" for
// compressed stashes, none for those stored as given.
func contentEncoding(a *driver.Attributes) string {
	if a.Encoding == driver.EncodingZstd {
		return "zstd"
	}
	return ""
}

// List implements driver.Lister over WithBuckets, or every bucket the
// credentials can list, under the prefix. ListObjectsV2 returns no user
// metadata, so List costs one HEAD per object; objects without claimstash
// attributes are skipped. For large buckets prefer a lifecycle rule (see the
// package documentation) to Engine.Sweep.
func (s *Store) List(ctx context.Context, fn func(ns, key string, attrs *driver.Attributes) error) error {
	if s.opts.Bucket != "" {
		return s.listBucket(ctx, s.opts.Bucket, func(_, k string, a *driver.Attributes) error {
			ns, key, ok := strings.Cut(k, "/")
			if !ok {
				return nil // not one of ours
			}
			return fn(ns, key, a)
		})
	}
	buckets := s.opts.Buckets
	if len(buckets) == 0 {
		p := s3.NewListBucketsPaginator(s.client, &s3.ListBucketsInput{})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("s3stash: list buckets: %w", err)
			}
			for _, b := range page.Buckets {
				buckets = append(buckets, aws.ToString(b.Name))
			}
		}
	}
	for _, b := range buckets {
		if err := s.listBucket(ctx, b, fn); err != nil {
			return err
		}
	}
	return nil
}

// listBucket calls fn with the keys under the prefix (the prefix cut off)
// of the objects that carry claimstash attributes.
func (s *Store) listBucket(ctx context.Context, bucket string, fn func(ns, key string, attrs *driver.Attributes) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(s.opts.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if isNoSuchBucket(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("s3stash: list %s: %w", bucket, err)
		}
		for _, obj := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(obj.Key), s.opts.Prefix)
			out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: obj.Key})
			if isNotFound(err) {
				continue // deleted meanwhile
			}
			if err != nil {
				return wrap("list", bucket, key, err)
			}
			if _, ours := out.Metadata[metaKey]; !ours {
				continue
			}
			a, err := decodeAttrs(out.Metadata, out.ContentLength, out.LastModified, out.ContentType)
			if err != nil {
				return err
			}
			if err := fn(bucket, key, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// SignURL implements driver.Signer with a SigV4 presigned GET, valid until
// r.Expires (at most MaxPresignTTL from now; the SDK signs by the system
// clock). It does no I/O: the URL of a missing object answers 404.
func (s *Store) SignURL(ctx context.Context, r driver.LinkRequest) (string, error) {
	ttl := time.Until(r.Expires).Round(time.Second)
	if ttl < time.Until(r.Expires) {
		ttl += time.Second // a link lives at least its TTL
	}
	ns, key := r.Namespace, r.Key
	if err := s.checkNamespace(ns); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxPresignTTL {
		return "", fmt.Errorf("%w: s3stash: presigned URL lifetime %v outside (0, %v]", driver.ErrUnsupported, ttl, MaxPresignTTL)
	}
	bk, k := s.Locate(ns, key)
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bk), Key: aws.String(k)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", wrap("sign", ns, key, err)
	}
	return req.URL, nil
}

// Scheme implements driver.Driver: it is the package's Scheme.
func (*Store) Scheme() string { return Scheme }
