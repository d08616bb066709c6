package stash

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

// Defaults, in one place. The README's defaults table mirrors this block.
const (
	// DefaultNamespace is used when neither the engine nor the call names one.
	DefaultNamespace = "default"
	// DefaultInlineMax is the largest inline address data, in encoded
	// (URL-escaped base64) characters: kstash's default. Payloads that fit
	// travel in the address itself and touch no backend.
	DefaultInlineMax = 100
	// DefaultCompressFloor: payloads smaller than this are stored as given.
	DefaultCompressFloor = 4 << 10
	// DefaultMaxSize bounds a payload on create and on read.
	DefaultMaxSize = 5 << 30
	// DefaultTTL is the default time-to-live of a stash: zero, no expiry.
	DefaultTTL = 0
	// DefaultShareTTL is the lifetime of a share link when the call gives none.
	DefaultShareTTL = 15 * time.Minute
	// DefaultSpoolMemory: CreateFrom buffers payloads up to this size in
	// memory; larger ones are spooled to a temporary file.
	DefaultSpoolMemory = 8 << 20
)

// Compression chooses how a payload is stored.
type Compression int

const (
	// CompressionAuto (the default) compresses with zstd at or above the
	// engine's floor, and stores the payload as given where zstd does not
	// save at least an eighth.
	CompressionAuto Compression = iota
	// CompressionNone stores the payload as given.
	CompressionNone
	// CompressionZstd compresses whenever it saves any bytes, ignoring the floor.
	CompressionZstd
)

// An Option configures an Engine; pass it to New. Options are made by the
// With* functions of this package (WithBackend, WithNamespace, ...); an
// option that does not apply to New does not compile.
type Option interface {
	applyEngine(*Engine) error
}

type engineOption func(*Engine) error

func (f engineOption) applyEngine(e *Engine) error { return f(e) }

// WithBackend adds a backend you built. It serves the scheme the driver
// reports (d.Scheme()), so an address can only ever be read by the kind of
// store that wrote it. Backends are tried in the order they are added: a
// payload goes to the first one whose size limit it fits (inline is tried
// before all of them when enabled). A scheme may be added once.
func WithBackend(d driver.Driver, opts ...BackendOption) Option {
	return engineOption(func(e *Engine) error {
		if d == nil {
			return errors.New("stash: WithBackend: nil driver")
		}
		b := &backend{scheme: d.Scheme(), driver: d}
		for _, o := range opts {
			if o == nil {
				continue // a nil option is none
			}
			o.applyBackend(b)
		}
		return e.addBackend(b)
	})
}

// WithBackendURL opens a backend by URL through the scheme registry
// (OpenDriver) and adds it as WithBackend does. The engine closes it on Close.
func WithBackendURL(ctx context.Context, rawURL string, opts ...BackendOption) Option {
	return engineOption(func(e *Engine) error {
		d, err := OpenDriver(ctx, rawURL)
		if err != nil {
			return err
		}
		b := &backend{scheme: d.Scheme(), driver: d, owned: true}
		for _, o := range opts {
			if o == nil {
				continue // a nil option is none
			}
			o.applyBackend(b)
		}
		if err := e.addBackend(b); err != nil {
			_ = d.Close()
			return err
		}
		return nil
	})
}

// A BackendOption configures one backend of WithBackend or WithBackendURL.
type BackendOption interface {
	applyBackend(*backend)
}

type backendOption func(*backend)

func (f backendOption) applyBackend(b *backend) { f(b) }

// MaxPayload makes a backend accept only payloads of at most n bytes; larger
// ones go on to the next backend. Zero means no limit.
func MaxPayload(n int64) BackendOption { return backendOption(func(b *backend) { b.maxSize = n }) }

// WithNamespace sets the engine's default namespace (DefaultNamespace).
func WithNamespace(ns string) Option {
	return engineOption(func(e *Engine) error {
		if err := validNamespace(ns); err != nil {
			return err
		}
		e.namespace = ns
		return nil
	})
}

// WithScopes sets the engine's default scopes, in order.
func WithScopes(scopes ...Scope) Option {
	return engineOption(func(e *Engine) error {
		if err := validScopes(scopes); err != nil {
			return err
		}
		e.scopes = append([]Scope(nil), scopes...)
		return nil
	})
}

// WithInlineMax sets the largest inline data in encoded characters
// (DefaultInlineMax); a negative value disables inline stashes. Whatever it
// is, a payload travels inline only if its whole inline address stays
// within the 64 KiB that ParseAddress accepts; a larger one is stored.
func WithInlineMax(n int) Option {
	return engineOption(func(e *Engine) error { e.inlineMax = n; return nil })
}

// WithCompressFloor sets the size below which CompressionAuto stores payloads
// as given (DefaultCompressFloor).
func WithCompressFloor(n int64) Option {
	return engineOption(func(e *Engine) error { e.compressFloor = n; return nil })
}

// WithMaxSize bounds payloads on create and read (DefaultMaxSize).
func WithMaxSize(n int64) Option {
	return engineOption(func(e *Engine) error { e.maxSize = n; return nil })
}

// WithDefaultTTL sets the time-to-live of stashes created without one.
func WithDefaultTTL(d time.Duration) Option {
	return engineOption(func(e *Engine) error { e.defaults.ttl = d; return nil })
}

// WithDefaultTTI sets the time-to-idle of stashes created without one.
func WithDefaultTTI(d time.Duration) Option {
	return engineOption(func(e *Engine) error { e.defaults.tti = d; return nil })
}

// WithOrigin sets the origin recorded on stashes created without one.
func WithOrigin(origin string) Option {
	return engineOption(func(e *Engine) error { e.defaults.origin = origin; return nil })
}

// WithLogger sets the engine's logger (slog.Default() by default). The engine
// logs only what it cannot return: a failed access-time update, say.
func WithLogger(l *slog.Logger) Option {
	return engineOption(func(e *Engine) error { e.logger = l; return nil })
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return engineOption(func(e *Engine) error { e.now = now; return nil })
}

// WithTempDir sets where CreateFrom spools large payloads (os.TempDir()).
func WithTempDir(dir string) Option {
	return engineOption(func(e *Engine) error { e.tempDir = dir; return nil })
}

// A CreateOption configures one call of Create or CreateFrom: it overrides
// the engine's defaults for that stash only. Per-call options have plain
// names (TTL, Compress, ...); engine options start with With.
type CreateOption interface {
	applyCreate(*createOptions)
}

type createOption func(*createOptions)

func (f createOption) applyCreate(o *createOptions) { f(o) }

type createOptions struct {
	namespace   string
	scopes      []Scope
	scopesSet   bool
	ttl, tti    time.Duration
	noExpiry    bool
	compression Compression
	contentType string
	metadata    map[string]string
	origin      string
	noInline    bool
}

// InNamespace stores the stash in ns instead of the engine's namespace.
func InNamespace(ns string) CreateOption {
	return createOption(func(o *createOptions) { o.namespace = ns })
}

// InScopes stores the stash under these scopes instead of the engine's.
func InScopes(scopes ...Scope) CreateOption {
	return createOption(func(o *createOptions) { o.scopes, o.scopesSet = scopes, true })
}

// TTL sets the time-to-live: the stash expires d after creation.
func TTL(d time.Duration) CreateOption { return createOption(func(o *createOptions) { o.ttl = d }) }

// TTI sets the time-to-idle: the stash expires d after it was last read.
func TTI(d time.Duration) CreateOption { return createOption(func(o *createOptions) { o.tti = d }) }

// NoExpiry overrides the engine's default TTL and TTI: the stash lives until
// deleted.
func NoExpiry() CreateOption { return createOption(func(o *createOptions) { o.noExpiry = true }) }

// Compress overrides CompressionAuto for this stash.
func Compress(c Compression) CreateOption {
	return createOption(func(o *createOptions) { o.compression = c })
}

// ContentType records the payload's media type.
func ContentType(ct string) CreateOption {
	return createOption(func(o *createOptions) { o.contentType = ct })
}

// Metadata records caller-defined key-values with the stash. A stash with
// metadata is never inlined (an inline address carries only the data).
func Metadata(md map[string]string) CreateOption {
	return createOption(func(o *createOptions) {
		o.metadata = make(map[string]string, len(md))
		for k, v := range md {
			o.metadata[k] = v
		}
	})
}

// Origin records who created the stash.
func Origin(origin string) CreateOption {
	return createOption(func(o *createOptions) { o.origin = origin })
}

// NoInline stores the payload in a backend even when it would fit inline.
func NoInline() CreateOption { return createOption(func(o *createOptions) { o.noInline = true }) }
