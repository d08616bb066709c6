// Package claimstash is the one-call setup of the claim-check pattern: it
// builds a stash engine over a backend URL and a claim checker over the
// engine, with the standard backends (mem, file, s3, nats, and objectstore,
// the client of an objectstore service or claimstash serve) linked in, as
// in the claimstash command line, so no blank import is needed and a backend
// URL of any of them just works.
//
//	cc, err := claimstash.Open(ctx, "file:///var/lib/claimstash")
//	if err != nil { ... }
//	defer cc.Engine().Close()
//	// hand cc to a transport: ccwatermill, ccsarama, ccnats
//
// OpenEnv does the same from the environment the claimstash command line
// reads, through the same parsers, so a service and the command line
// configured alike build the same engine and see the same stashes:
//
//	CLAIMSTASH_BACKEND          backends, comma-separated, tried in order (required):
//	                            URLs, or directories (/var/lib/claimstash is file:///var/lib/claimstash)
//	CLAIMSTASH_NAMESPACE        the default namespace (stash.WithNamespace; default "default")
//	CLAIMSTASH_MAX_SIZE         the largest payload: 10485760, 10MB or 10MiB (stash.WithMaxSize; 0 or unset: 5 GiB)
//	CLAIMSTASH_LINK_KEYS        share-link keys, id:base64-secret,...; the first signs (links.ParseKeys)
//	CLAIMSTASH_LINK_KEY         the same, read when CLAIMSTASH_LINK_KEYS is unset
//	CLAIMSTASH_SHARE_URL        where the share-link handler is reachable (links.NewHMAC)
//	CLAIMSTASH_TRUSTED_ORIGINS  origins whose share links may be fetched, comma-separated (links.TrustOrigins)
//
// The three link variables go through links.EngineOptions.
//
// Values are trimmed of surrounding space; an empty variable counts as
// unset. A relative directory is taken from the working directory when the
// variable is read (./stashes, or stashes, is file://<working
// directory>/stashes), here and on the command line. A size with a comma or
// a fraction of a byte is refused. An error names the variable that was set. EngineFromEnv builds only the engine, as the
// command line does.
//
// Options passed to Open and OpenEnv come after those the URL or the
// environment imply, so they override them: WithEngineOptions adds engine
// options (stash.Option), WithCheckerOptions checker options
// (claimcheck.Option), and WithGetenv replaces os.Getenv.
package claimstash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/settings"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"

	// The standard backends register their schemes.
	_ "github.com/claimstash/claimstash/stash/filestash"
	_ "github.com/claimstash/claimstash/stash/memstash"
	_ "github.com/claimstash/claimstash/stash/natsstash"
	_ "github.com/claimstash/claimstash/stash/objectstash"
	_ "github.com/claimstash/claimstash/stash/s3stash"
)

// Environment variables OpenEnv and EngineFromEnv read; the command line
// reads the same.
const (
	EnvBackend        = "CLAIMSTASH_BACKEND"
	EnvNamespace      = "CLAIMSTASH_NAMESPACE"
	EnvMaxSize        = "CLAIMSTASH_MAX_SIZE"
	EnvLinkKeys       = "CLAIMSTASH_LINK_KEYS"
	EnvLinkKey        = "CLAIMSTASH_LINK_KEY"
	EnvShareURL       = "CLAIMSTASH_SHARE_URL"
	EnvTrustedOrigins = "CLAIMSTASH_TRUSTED_ORIGINS"
)

// An Option configures Open, OpenEnv or EngineFromEnv.
type Option interface {
	apply(*config)
}

type option func(*config)

func (f option) apply(c *config) { f(c) }

type config struct {
	engine  []stash.Option
	checker []claimcheck.Option
	getenv  func(string) string
}

func newConfig(opts []Option) *config {
	c := &config{getenv: os.Getenv}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(c)
	}
	return c
}

// WithEngineOptions adds options to the engine, after those the backend URL
// or the environment imply.
func WithEngineOptions(opts ...stash.Option) Option {
	return option(func(c *config) { c.engine = append(c.engine, opts...) })
}

// WithCheckerOptions adds options to the checker.
func WithCheckerOptions(opts ...claimcheck.Option) Option {
	return option(func(c *config) { c.checker = append(c.checker, opts...) })
}

// WithGetenv makes OpenEnv and EngineFromEnv read variables through getenv
// instead of os.Getenv (for tests, or a command line's own environment).
func WithGetenv(getenv func(string) string) Option {
	return option(func(c *config) {
		if getenv != nil {
			c.getenv = getenv
		}
	})
}

// Open builds an engine over the backend at backendURL (any scheme of the
// standard backends, or one registered by another linked-in package) and a
// checker over it. Close the engine (cc.Engine().Close()) when done.
func Open(ctx context.Context, backendURL string, opts ...Option) (*claimcheck.Checker, error) {
	c := newConfig(opts)
	if strings.TrimSpace(backendURL) == "" {
		return nil, errors.New("claimstash: no backend URL")
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackendURL(ctx, backendURL)}, c.engine...)...)
	if err != nil {
		return nil, err
	}
	return checker(e, c)
}

// OpenEnv is Open configured from the CLAIMSTASH_* environment (see the
// package documentation).
func OpenEnv(ctx context.Context, opts ...Option) (*claimcheck.Checker, error) {
	c := newConfig(opts)
	e, err := engineFromEnv(ctx, c)
	if err != nil {
		return nil, err
	}
	return checker(e, c)
}

// EngineFromEnv builds only the engine from the CLAIMSTASH_* environment, as
// the command line does. CLAIMSTASH_BACKEND is required.
func EngineFromEnv(ctx context.Context, opts ...Option) (*stash.Engine, error) {
	return engineFromEnv(ctx, newConfig(opts))
}

func checker(e *stash.Engine, c *config) (*claimcheck.Checker, error) {
	cc, err := claimcheck.New(e, c.checker...)
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	return cc, nil
}

func engineFromEnv(ctx context.Context, c *config) (*stash.Engine, error) {
	opts, err := EnvOptions(ctx, c.getenv)
	if err != nil {
		return nil, err
	}
	return stash.New(append(opts, c.engine...)...)
}

// EnvOptions returns the engine options the CLAIMSTASH_* variables read
// through getenv imply, for callers (a command line with flags that override
// the environment) that assemble the engine themselves. A missing
// CLAIMSTASH_BACKEND is an error. Each value goes through the parser the
// command line's flags and variables go through, and an error names the
// variable that was set.
func EnvOptions(ctx context.Context, getenv func(string) string) ([]stash.Option, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	named := func(name string, err error) error { return fmt.Errorf("claimstash: %s: %w", name, err) }
	backends, err := settings.ParseBackends(env(EnvBackend))
	if err != nil {
		return nil, named(EnvBackend, err)
	}
	if len(backends) == 0 {
		return nil, fmt.Errorf("claimstash: no backend: set %s (a directory, or a URL such as file:///var/lib/claimstash)", EnvBackend)
	}
	var opts []stash.Option
	for _, b := range backends {
		opts = append(opts, stash.WithBackendURL(ctx, b))
	}
	ns, err := settings.ParseNamespace(env(EnvNamespace))
	if err != nil {
		return nil, named(EnvNamespace, err)
	}
	if ns != "" {
		opts = append(opts, stash.WithNamespace(ns))
	}
	if s := env(EnvMaxSize); s != "" {
		n, err := settings.ParseSize(s)
		if err != nil {
			return nil, named(fmt.Sprintf("%s=%s", EnvMaxSize, settings.Quote(s)), err)
		}
		if n > 0 {
			opts = append(opts, stash.WithMaxSize(n))
		}
	}
	keysVar := EnvLinkKeys
	if env(EnvLinkKeys) == "" && env(EnvLinkKey) != "" {
		keysVar = EnvLinkKey
	}
	keys, err := settings.ParseLinkKeys(env(keysVar))
	if err != nil {
		return nil, named(keysVar, err)
	}
	shareURL, err := settings.ParseShareURL(env(EnvShareURL))
	if err != nil {
		return nil, named(EnvShareURL, err)
	}
	origins, err := settings.ParseOrigins(env(EnvTrustedOrigins))
	if err != nil {
		return nil, named(EnvTrustedOrigins, err)
	}
	_, lopts, err := links.EngineOptions(keys, shareURL, origins...)
	if err != nil {
		return nil, fmt.Errorf("claimstash: %s, %s and %s: %w", keysVar, EnvShareURL, EnvTrustedOrigins, err)
	}
	return append(opts, lopts...), nil
}
