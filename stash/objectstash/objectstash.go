package objectstash

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// Scheme is the address scheme of stashes kept in an objectstore service:
// objectstore://<usecase>/<scope>=<value>/…/<name>.<digest>.
const Scheme = "objectstore"

// Defaults, in one place.
const (
	// DefaultConnectTimeout bounds one connection attempt, as objectstore's
	// clients do.
	DefaultConnectTimeout = 100 * time.Millisecond
	// DefaultConnectRetries is how many times a failed connection attempt is
	// retried (only connecting is retried: a body cannot be rewound).
	DefaultConnectRetries = 3
	// DefaultParallelAbove is the size above which a Get fetches an object
	// in parallel ranges; objects up to it take one streamed GET. Ranges
	// gain where one connection is slow (a distant service); on a fast
	// network the client's hashing, not the socket, is the bottleneck, and
	// each range costs a request and a copy: through claimstash's server on
	// loopback, a 64 MiB Retrieve ran at 0.6x the file driver's throughput
	// in 8 MiB ranges, and at 0.8–0.9x as one GET.
	DefaultParallelAbove = 64 << 20
	// DefaultPartSize is the ranged-read chunk: an object larger than
	// DefaultParallelAbove streams its first DefaultParallelAbove bytes while
	// the rest is fetched in parallel ranges of this size.
	DefaultPartSize = 8 << 20
	// DefaultConcurrency is how many ranges are fetched at once. Memory in
	// flight per Get is at most (Concurrency+1) × PartSize.
	DefaultConcurrency = 4
	// DefaultTokenLifetime is the lifetime of a signed token.
	DefaultTokenLifetime = time.Minute
	// maxCachedTokens bounds the signed tokens kept for reuse.
	maxCachedTokens = 1024

	// metaAttrs is the custom metadata key (header x-snme-claimstash) that
	// carries the driver attributes, base64url JSON, so they round-trip
	// exactly through a service that sets its own creation time.
	metaAttrs = "claimstash"
	// metaSize carries the decoded size of a zstd body (see the service).
	metaSize = "claimstash-size"
	// headerDecodedSize is where claimstash's server gives the decoded
	// size of every zstd object it knows it of, ours or another client's.
	headerDecodedSize = "x-claimstash-decoded-size"
)

// An Option configures a Store.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	token          string
	signer         *osauth.Signer
	tokenLifetime  time.Duration
	connectTimeout time.Duration
	retries        int
	readTimeout    time.Duration
	tls            *tls.Config
	partSize       int64
	parallelAbove  int64
	concurrency    int
	client         *http.Client
}

// WithToken sends one static token with every request (x-os-auth).
func WithToken(tok string) Option { return optionFunc(func(o *options) { o.token = tok }) }

// WithSigner signs tokens scoped to each request's usecase and scopes and
// granting only the permission it needs, and makes SignURL hand out
// presigned URLs. A token is reused by requests with the same usecase,
// scopes and permission for a quarter of its lifetime, so every token sent
// has at least three quarters of it left (signing one per request cost
// tens of microseconds, a good part of a small GET on loopback). URL: kid=
// and key_file=.
func WithSigner(s *osauth.Signer) Option { return optionFunc(func(o *options) { o.signer = s }) }

// WithTokenLifetime sets the lifetime of signed tokens (DefaultTokenLifetime).
func WithTokenLifetime(d time.Duration) Option {
	return optionFunc(func(o *options) { o.tokenLifetime = d })
}

// WithConnectTimeout bounds one connection attempt (DefaultConnectTimeout).
// URL: connect_timeout=.
func WithConnectTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.connectTimeout = d })
}

// WithConnectRetries sets how often a failed connection attempt is retried
// (DefaultConnectRetries; 0 for none). URL: retries=.
func WithConnectRetries(n int) Option {
	return optionFunc(func(o *options) { o.retries = n })
}

// WithReadTimeout bounds the wait between two reads from the connection
// (none by default). URL: read_timeout=.
func WithReadTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.readTimeout = d })
}

// WithTLSConfig sets the TLS settings for an https endpoint. URL: ca_file=.
func WithTLSConfig(c *tls.Config) Option { return optionFunc(func(o *options) { o.tls = c }) }

// WithPartSize sets the ranged-read chunk size (DefaultPartSize). URL: part_size=.
func WithPartSize(n int64) Option { return optionFunc(func(o *options) { o.partSize = n }) }

// WithParallelAbove sets the size above which a Get fetches an object in
// parallel ranges (DefaultParallelAbove). URL: parallel_above=.
func WithParallelAbove(n int64) Option { return optionFunc(func(o *options) { o.parallelAbove = n }) }

// WithConcurrency sets how many ranges a Get fetches at once
// (DefaultConcurrency). URL: concurrency=.
func WithConcurrency(n int) Option { return optionFunc(func(o *options) { o.concurrency = n }) }

// WithHTTPClient replaces the HTTP client the store builds; connect
// timeout, retries, read timeout and TLS options are then ignored, and so
// is the store's own refusal to follow redirects (c's CheckRedirect
// rules).
func WithHTTPClient(c *http.Client) Option { return optionFunc(func(o *options) { o.client = c }) }

// Store is a stash backend over an objectstore v1 HTTP API: claimstash's
// own server (package service) or Sentry's objectstore. Make it with New.
type Store struct {
	base   *url.URL
	client *http.Client
	o      options
	bufs   sync.Pool

	tokMu  sync.Mutex
	tokens map[tokenKey]cachedToken

	// createOnly is whether the last response came from a server that
	// honours If-None-Match: * on a PUT (claimstash's, which says so in
	// headerConditionalPut): Put then needs no HEAD first.
	createOnly atomic.Bool
}

// headerConditionalPut is what claimstash's server sends with every object
// response to say that a PUT with If-None-Match: * only creates (412 when
// the key holds an object). objectstore's own server sends nothing of the
// kind, and replaces.
const (
	headerConditionalPut = "x-claimstash-conditional-put"
	conditionalPutValue  = "if-none-match"
)

// tokenKey is what a signed token is good for.
type tokenKey struct {
	usecase, scopes string
	perm            osauth.Permission
}

type cachedToken struct {
	header        string // "Bearer <jwt>"
	signed, renew time.Time
}

var (
	_ driver.Driver  = (*Store)(nil)
	_ driver.Signer  = (*Store)(nil)
	_ driver.Updater = (*Store)(nil)

	_ driver.ExclusivePutter = (*Store)(nil)
)

// New makes a Store for the service at endpoint ("http://host:port" or
// "https://host:port/base-path").
func New(endpoint string, opts ...Option) (*Store, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: objectstash: endpoint: %w", driver.ErrInvalidAddress, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: objectstash: endpoint %q: want http(s)://host[:port][/path]", driver.ErrInvalidAddress, u.Redacted())
	}
	if err := driver.CheckHost(u); err != nil {
		return nil, fmt.Errorf("%w: objectstash: endpoint %q: %v", driver.ErrInvalidAddress, u.Redacted(), err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	o := options{connectTimeout: DefaultConnectTimeout, retries: DefaultConnectRetries, partSize: DefaultPartSize, parallelAbove: DefaultParallelAbove, concurrency: DefaultConcurrency, tokenLifetime: DefaultTokenLifetime}
	for _, opt := range opts {
		if opt == nil {
			continue // a nil option is none
		}
		opt.apply(&o)
	}
	if o.token != "" && o.signer != nil {
		return nil, errors.New("objectstash: give a static token or a signer, not both")
	}
	if o.tokenLifetime <= 0 {
		o.tokenLifetime = DefaultTokenLifetime
		if o.signer != nil && o.signer.Lifetime > 0 {
			o.tokenLifetime = o.signer.Lifetime
		}
	}
	if o.partSize <= 0 {
		o.partSize = DefaultPartSize
	}
	if o.parallelAbove <= 0 {
		o.parallelAbove = DefaultParallelAbove
	}
	if o.concurrency <= 0 {
		o.concurrency = DefaultConcurrency
	}
	if o.retries < 0 {
		o.retries = 0
	}
	s := &Store{base: u, o: o}
	s.bufs.New = func() any { b := make([]byte, o.partSize); return &b }
	s.client = o.client
	if s.client == nil {
		s.client = &http.Client{Transport: s.transport(), CheckRedirect: noRedirects}
	}
	return s, nil
}

// noRedirects leaves a redirect unfollowed: objectstore never sends one,
// and following it would send the request's token (a header net/http
// does not strip) to the host it names, and read that host's answer as
// the object. The 3xx is then a StatusError like any other status the
// store does not expect.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (s *Store) transport() *http.Transport {
	d := &net.Dialer{Timeout: s.o.connectTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var err error
		for attempt := 0; attempt <= s.o.retries; attempt++ {
			var c net.Conn
			if c, err = d.DialContext(ctx, network, addr); err == nil {
				if s.o.readTimeout > 0 {
					c = &deadlineConn{Conn: c, timeout: s.o.readTimeout}
				}
				return c, nil
			}
			if ctx.Err() != nil {
				break
			}
		}
		return nil, err
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dial,
		TLSClientConfig:     s.o.tls,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		// The body arrives already encoded; never let the transport add
		// or undo an encoding.
		DisableCompression: true,
	}
}

// deadlineConn fails a read that waits longer than timeout for data.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Close implements driver.Driver.
func (s *Store) Close() error {
	if t, ok := s.client.Transport.(*http.Transport); ok && s.o.client == nil {
		t.CloseIdleConnections()
	}
	return nil
}

// object is where a driver namespace and key live in the service: the
// namespace is the usecase, the key's scope segments are the scopes (in
// order, "k=v;k2=v2", or "_"), and its last segment is the object key.
type object struct {
	usecase string
	scopes  []osauth.Scope
	key     string
}

func parseKey(ns, key string) (object, error) {
	segs := strings.Split(key, "/")
	o := object{usecase: ns, key: segs[len(segs)-1]}
	for _, seg := range segs[:len(segs)-1] {
		k, v, ok := strings.Cut(seg, "=")
		if !ok || k == "" || v == "" {
			return o, fmt.Errorf("%w: objectstash: path segment %q is not a scope", driver.ErrInvalidAddress, seg)
		}
		if strings.ContainsAny(v, ".") {
			return o, fmt.Errorf("%w: objectstash: scope value %q: objectstore scopes cannot hold dots", driver.ErrInvalidAddress, v)
		}
		o.scopes = append(o.scopes, osauth.Scope{Key: k, Value: v})
	}
	if ns == "" || o.key == "" {
		return o, fmt.Errorf("%w: objectstash: empty namespace or key", driver.ErrInvalidAddress)
	}
	return o, nil
}

func (o object) scopeString() string {
	if len(o.scopes) == 0 {
		return "_"
	}
	parts := make([]string, len(o.scopes))
	for i, sc := range o.scopes {
		parts[i] = sc.Key + "=" + sc.Value
	}
	return strings.Join(parts, ";")
}

func (s *Store) url(o object) string {
	u := *s.base
	u.Path = s.base.Path + "/v1/objects/" + o.usecase + "/" + o.scopeString() + "/" + o.key
	return u.String()
}

func (s *Store) request(ctx context.Context, method string, o object, perm osauth.Permission, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url(o), body)
	if err != nil {
		return nil, fmt.Errorf("objectstash: %w", err)
	}
	switch {
	case s.o.signer != nil:
		auth, err := s.signed(o, perm)
		if err != nil {
			return nil, err
		}
		req.Header.Set(osauth.HeaderAuth, auth)
	case s.o.token != "":
		req.Header.Set(osauth.HeaderAuth, "Bearer "+s.o.token)
	}
	return req, nil
}

// signed returns the auth header for a request of perm on o: a token
// signed for o's usecase and scopes and perm alone, reused for a quarter of
// its lifetime.
func (s *Store) signed(o object, perm osauth.Permission) (string, error) {
	now := time.Now
	if s.o.signer.Now != nil {
		now = s.o.signer.Now
	}
	k := tokenKey{o.usecase, o.scopeString(), perm}
	t := now()
	s.tokMu.Lock()
	c, ok := s.tokens[k]
	s.tokMu.Unlock()
	if ok && t.Before(c.renew) && !t.Before(c.signed) {
		return c.header, nil
	}
	tok, err := s.o.signer.Token(o.usecase, o.scopes, []osauth.Permission{perm}, s.o.tokenLifetime)
	if err != nil {
		return "", fmt.Errorf("objectstash: %w", err)
	}
	c = cachedToken{header: "Bearer " + tok, signed: t, renew: t.Add(s.o.tokenLifetime / 4)}
	s.tokMu.Lock()
	if s.tokens == nil || len(s.tokens) >= maxCachedTokens {
		s.tokens = make(map[tokenKey]cachedToken)
	}
	s.tokens[k] = c
	s.tokMu.Unlock()
	return c.header, nil
}

// StatusError is a response the store did not expect.
type StatusError struct {
	Method, URL string
	Status      int
	Detail      string
}

func (e *StatusError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("objectstash: %s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Detail)
	}
	return fmt.Sprintf("objectstash: %s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
}

// Is maps statuses onto the driver's sentinels: 404 is ErrNotFound, 413
// and 431 (metadata over the server's header limit) ErrTooLarge, 400
// ErrInvalidAddress.
func (e *StatusError) Is(target error) bool {
	switch e.Status {
	case http.StatusNotFound:
		return target == driver.ErrNotFound
	case http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return target == driver.ErrTooLarge
	case http.StatusBadRequest:
		return target == driver.ErrInvalidAddress
	}
	return false
}

func statusError(resp *http.Response) error {
	var body struct {
		Detail string `json:"detail"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &body)
	u := *resp.Request.URL
	u.RawQuery = ""
	return &StatusError{Method: resp.Request.Method, URL: u.String(), Status: resp.StatusCode, Detail: body.Detail}
}

// release reads what is left of a short answer (up to 4 KiB) and closes
// it. net/http ends the connection of a response body closed before its
// end; read to it, the connection serves the next request.
func release(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

func (s *Store) do(req *http.Request) (*http.Response, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("objectstash: %w", err)
	}
	s.createOnly.Store(resp.Header.Get(headerConditionalPut) == conditionalPutValue)
	return resp, nil
}

// exclusivePutMax is the largest payload Create puts without a HEAD first
// (ExclusivePut). Against objectstore's server, Put asks with its own HEAD
// anyway; against claimstash's, a PUT refused because the content is stored
// already sends what the server reads before its 412, which up to this size
// costs about what the HEAD it saves for every new stash does.
const exclusivePutMax = 1 << 20

// ExclusivePut implements driver.ExclusivePutter: Put never replaces an
// object and answers driver.ErrExists for one that is there, so the engine
// puts a payload of up to 1 MiB without asking with a HEAD first.
func (s *Store) ExclusivePut(size int64) bool { return size <= exclusivePutMax }

// Put implements driver.Driver. An existing object is left alone
// (driver.ErrExists). objectstore's server would replace it, so Put asks
// first with a HEAD, which leaves a moment between the check and the write.
// A server that says it honours If-None-Match: * on a PUT (claimstash's,
// seen in the last response) is asked nothing first: the PUT carries the
// condition, the check is the server's own and atomic, and its 412 is
// driver.ErrExists.
func (s *Store) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o, err := parseKey(ns, key)
	if err != nil {
		return err
	}
	createOnly := s.createOnly.Load()
	if !createOnly {
		if _, err := s.head(ctx, o); err == nil {
			return driver.ErrExists
		} else if !errors.Is(err, driver.ErrNotFound) {
			return err
		}
	}
	blob, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("objectstash: encoding attributes: %w", err)
	}
	// The request body must be exactly size bytes: a short reader fails
	// the request (the server then stores nothing), a long one is cut.
	body := &exactReader{r: r, left: size, closed: make(chan struct{})}
	// net/http may still be writing the body when the response is in (a
	// 412 or an error answered before the whole body was read): Put
	// returns only once the transport has closed it, so that r is never
	// read after Put returns, as the io.Reader contract wants. If the
	// transport still holds it once the response is handled, the request
	// is cancelled, which makes the transport let go.
	rctx, cancel := context.WithCancel(ctx)
	defer body.release(cancel)
	req, err := s.request(rctx, http.MethodPut, o, osauth.Write, body)
	if err != nil {
		body.Close()
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
		body.Close()
	}
	h := req.Header
	if createOnly {
		h.Set("If-None-Match", "*")
	}
	if attrs.ContentType != "" {
		h.Set("Content-Type", attrs.ContentType)
	}
	if attrs.Encoding == driver.EncodingZstd {
		h.Set("Content-Encoding", "zstd")
		h.Set("x-snme-"+metaSize, strconv.FormatInt(attrs.Size, 10))
	} else if attrs.Encoding != driver.EncodingIdentity {
		return fmt.Errorf("%w: objectstash: encoding %q", driver.ErrUnsupported, attrs.Encoding)
	}
	if exp := expiration(attrs, time.Now()); exp != "" {
		h.Set("x-sn-expiration", exp)
	}
	if attrs.Origin != "" {
		h.Set("x-sn-origin", encodeHeaderValue(attrs.Origin))
	}
	for k, v := range attrs.Metadata {
		lk := strings.ToLower(k)
		if lk != metaAttrs && lk != metaSize && validToken(k) {
			h.Set("x-snme-"+k, encodeHeaderValue(v))
		}
	}
	h.Set("x-snme-"+metaAttrs, base64.RawURLEncoding.EncodeToString(blob))
	body.sent = true // from here on the transport holds it until it closes it
	resp, err := s.do(req)
	if err != nil {
		if body.err != nil {
			return fmt.Errorf("objectstash: reading the payload: %w", body.err)
		}
		return err
	}
	defer release(resp)
	if resp.StatusCode == http.StatusPreconditionFailed && createOnly {
		return driver.ErrExists // what every Create of content stored already gets
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return statusError(resp)
	}
	if body.err != nil {
		return fmt.Errorf("objectstash: reading the payload: %w", body.err)
	}
	return nil
}

// exactReader yields exactly left bytes of r, or an error. Its Close,
// which the HTTP transport calls once it is done with a request body, is
// what Put waits for before it returns.
type exactReader struct {
	r      io.Reader
	left   int64
	err    error
	once   sync.Once
	closed chan struct{}
	sent   bool // handed to the transport
}

func (e *exactReader) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}

// release waits until the transport has closed a body it was handed,
// cancelling the request (with cancel) if it has not by the time the
// response is handled. net/http always closes a request body it was given;
// the bound only keeps a transport that never did from hanging Put.
func (e *exactReader) release(cancel context.CancelFunc) {
	defer cancel()
	if !e.sent {
		return
	}
	select {
	case <-e.closed:
		return
	default:
	}
	cancel()
	select {
	case <-e.closed:
	case <-time.After(releaseWait):
	}
}

// releaseWait bounds how long Put waits for the transport to close a body.
const releaseWait = 30 * time.Second

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		e.err = err
	}
	if e.left == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// expiration is the x-sn-expiration header for attrs: time-to-idle, else
// the time-to-live left until ExpiresAt, else none (the service keeps it).
func expiration(a *driver.Attributes, now time.Time) string {
	switch {
	case a.TTI > 0:
		return "tti:" + seconds(a.TTI)
	case !a.ExpiresAt.IsZero():
		return "ttl:" + seconds(a.ExpiresAt.Sub(now))
	}
	return ""
}

func seconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10) + "s"
}

func validToken(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func encodeHeaderValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 0x20 && c < 0x7f && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// decodeHeaderValue undoes encodeHeaderValue as objectstore's clients do:
// a '%' that starts no escape is itself, so a value a server stored
// unencoded ("100%") reads back as it is, not as nothing.
func decodeHeaderValue(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			n, _ := strconv.ParseUint(v[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// attrsFrom reads the attributes from a response's headers: the exact ones
// claimstash stored, when present, else what objectstore's headers say.
func attrsFrom(h http.Header, key string) (*driver.Attributes, error) {
	stored, err := strconv.ParseInt(h.Get("x-sn-size"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: objectstash: response without a size", driver.ErrIntegrity)
	}
	var tti time.Duration
	exp := h.Get("x-sn-expiration")
	if v, ok := strings.CutPrefix(exp, "tti:"); ok {
		tti = parseSeconds(v)
	}
	ttl := strings.HasPrefix(exp, "ttl:")
	expires, _ := time.Parse(time.RFC3339Nano, h.Get("x-sn-time-expires"))
	if blob := h.Get("x-snme-" + metaAttrs); blob != "" {
		raw, err := base64.RawURLEncoding.DecodeString(blob)
		if err != nil {
			return nil, fmt.Errorf("%w: objectstash: attribute header: %v", driver.ErrIntegrity, err)
		}
		var a driver.Attributes
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%w: objectstash: attribute header: %v", driver.ErrIntegrity, err)
		}
		if a.StoredSize != stored {
			return nil, fmt.Errorf("%w: objectstash: %d bytes stored, attributes say %d", driver.ErrIntegrity, stored, a.StoredSize)
		}
		// The service records reads for time-to-idle, and extensions
		// that did not rewrite our copy of the attributes (another
		// client's, or all of them on a server that ignores the copy on
		// a PATCH): take its later deadline.
		if a.TTI > 0 && !expires.IsZero() && tti == a.TTI {
			if last := expires.Add(-a.TTI); last.After(a.LastAccess) {
				a.LastAccess = last
			}
		}
		if a.TTI == 0 && !a.ExpiresAt.IsZero() && !expires.IsZero() && ttl && expires.Sub(a.ExpiresAt) > extendSlack {
			a.ExpiresAt = expires
		}
		return &a, nil
	}
	a := &driver.Attributes{StoredSize: stored, Size: stored, ContentType: h.Get("Content-Type"), TTI: tti}
	switch ce := strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))); ce {
	case "", "identity", "zstd":
	default:
		// Another client's encoding (objectstore's Rust client may send
		// gzip), which the engine reports as unsupported: the bytes are
		// not the payload.
		a.Encoding = driver.Encoding(ce)
	}
	if h.Get("Content-Encoding") == "zstd" {
		a.Encoding = driver.EncodingZstd
		a.Size, _ = strconv.ParseInt(h.Get("x-snme-"+metaSize), 10, 64)
		if a.Size == 0 {
			// claimstash's server counts the decoded size of a zstd
			// body another client sent without one.
			a.Size, _ = strconv.ParseInt(h.Get(headerDecodedSize), 10, 64)
		}
		if a.Size <= 0 && h.Get(headerDecodedSize) == "" {
			// objectstore's own server does not: Get and Stat count it
			// (sizeUnknown).
			a.Size = sizeUnknown
		}
	}
	if dot := strings.LastIndexByte(key, '.'); dot >= 0 {
		a.Digest = key[dot+1:]
	}
	a.Origin = decodeHeaderValue(h.Get("x-sn-origin"))
	a.Created, _ = time.Parse(time.RFC3339Nano, h.Get("x-sn-time-created"))
	if tti > 0 && !expires.IsZero() {
		a.LastAccess = expires.Add(-tti)
	} else if !expires.IsZero() {
		a.ExpiresAt = expires
	}
	for name, vs := range h {
		if k, ok := strings.CutPrefix(strings.ToLower(name), "x-snme-"); ok && k != metaSize && len(vs) == 1 {
			if a.Metadata == nil {
				a.Metadata = map[string]string{}
			}
			a.Metadata[k] = decodeHeaderValue(vs[0])
		}
	}
	return a, nil
}

// parseSeconds reads the durations the service writes back ("1d 2h 3m 4s").
func parseSeconds(v string) time.Duration {
	var total time.Duration
	for _, f := range strings.Fields(v) {
		if len(f) < 2 {
			return 0
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if err != nil {
			return 0
		}
		unit := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}[f[len(f)-1]]
		total += time.Duration(n) * unit
	}
	return total
}

// Stat implements driver.Driver with a HEAD, and for a zstd object with no
// decoded size (one objectstore's own clients wrote to its server) a GET
// that counts it.
func (s *Store) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	o, err := parseKey(ns, key)
	if err != nil {
		return nil, err
	}
	a, err := s.head(ctx, o)
	if err != nil || a.Size != sizeUnknown {
		return a, err
	}
	rc, a, err := s.Get(ctx, ns, key) // counts the decoded size
	if err != nil {
		return nil, err
	}
	rc.Close()
	return a, nil
}

// head asks for o's metadata with a HEAD: its attributes as the headers
// give them, Size sizeUnknown where they give none. Put and Delete, which
// only ask whether o is there, need no more (Stat counts an unknown size).
func (s *Store) head(ctx context.Context, o object) (*driver.Attributes, error) {
	req, err := s.request(ctx, http.MethodHead, o, osauth.Read, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.do(req)
	if err != nil {
		return nil, err
	}
	defer release(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	return attrsFrom(resp.Header, o.key)
}

// Delete implements driver.Driver. objectstore answers a DELETE of a missing
// object like any other, so Delete asks first (a HEAD) and reports
// ErrNotFound.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	o, err := parseKey(ns, key)
	if err != nil {
		return err
	}
	if _, err := s.head(ctx, o); err != nil {
		return err
	}
	req, err := s.request(ctx, http.MethodDelete, o, osauth.Delete, nil)
	if err != nil {
		return err
	}
	resp, err := s.do(req)
	if err != nil {
		return err
	}
	defer release(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	return nil
}

// SignURL implements driver.Signer with an objectstore presigned GET of
// /v1/objects/{usecase}/{scopes}/{key} (scopes in objectstore's form,
// "org=42;project=7", or "_"), valid until r.Expires (at most
// osauth.MaxPresignDuration from now), when the store has a signer. The
// path ends with the stash's name and digest, as the engine requires of a
// share link. It does no I/O.
func (s *Store) SignURL(_ context.Context, r driver.LinkRequest) (string, error) {
	if s.o.signer == nil {
		return "", fmt.Errorf("%w: objectstash: presigned URLs need a signing key", driver.ErrUnsupported)
	}
	o, err := parseKey(r.Namespace, r.Key)
	if err != nil {
		return "", err
	}
	ttl := time.Until(r.Expires)
	if ttl <= 0 || ttl > osauth.MaxPresignDuration {
		return "", fmt.Errorf("%w: objectstash: presigned URL lifetime %v outside (0, %v]", driver.ErrUnsupported, ttl.Round(time.Second), osauth.MaxPresignDuration)
	}
	return s.o.signer.Presign(http.MethodGet, s.url(o), ttl)
}

// Scheme implements driver.Driver: it is the package's Scheme.
func (*Store) Scheme() string { return Scheme }

func init() {
	stash.RegisterScheme(Scheme, func(ctx context.Context, u *url.URL) (driver.Driver, error) { return OpenURL(ctx, u) })
}
