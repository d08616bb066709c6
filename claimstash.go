// Package claimstash is the one-call setup of the claim-check pattern: it
// builds a stash engine over a backend URL and a claim checker over the
// engine, with the standard backends (mem, file, s3, nats) linked in, so no
// blank import is needed and a backend URL of any of them just works.
//
//	cc, err := claimstash.Open(ctx, "file:///var/lib/claimstash")
//	if err != nil { ... }
//	defer cc.Engine().Close()
//	// hand cc to a transport: ccwatermill, ccsarama, ccnats
//
// OpenEnv does the same from the environment the claimstash command line
// reads, so a service and the command line configured alike see the same
// stashes:
//
//	CLAIMSTASH_BACKEND          backend URLs, comma-separated, tried in order (required)
//	CLAIMSTASH_NAMESPACE        the default namespace (stash.WithNamespace)
//	CLAIMSTASH_MAX_SIZE         the largest payload, in bytes (stash.WithMaxSize)
//	CLAIMSTASH_LINK_KEYS        share-link keys, id:base64-secret,...; the first signs (links.ParseKeys)
//	CLAIMSTASH_LINK_KEY         the same, read when CLAIMSTASH_LINK_KEYS is unset
//	CLAIMSTASH_SHARE_URL        where the share-link handler is reachable (links.NewHMAC)
//	CLAIMSTASH_TRUSTED_ORIGINS  origins whose share links may be fetched, comma-separated (links.TrustOrigins)
//
// The three link variables go through links.EngineOptions.
//
// Values are trimmed of surrounding space; an empty variable counts as
// unset. EngineFromEnv builds only the engine, as the command line does.
// Two spellings the command line takes are refused here: a backend that is
// a bare directory (write file:///var/lib/claimstash, not
// /var/lib/claimstash) and a size with a unit (write 10485760, not 10MiB).
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
	"strconv"
	"strings"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"

	// The standard backends register their schemes.
	_ "github.com/claimstash/claimstash/stash/filestash"
	_ "github.com/claimstash/claimstash/stash/memstash"
	_ "github.com/claimstash/claimstash/stash/natsstash"
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
// CLAIMSTASH_BACKEND is an error.
func EnvOptions(ctx context.Context, getenv func(string) string) ([]stash.Option, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	var opts []stash.Option
	for _, b := range list(env(EnvBackend)) {
		opts = append(opts, stash.WithBackendURL(ctx, b))
	}
	if len(opts) == 0 {
		return nil, fmt.Errorf("claimstash: no backend: set %s (for example file:///var/lib/claimstash)", EnvBackend)
	}
	if ns := env(EnvNamespace); ns != "" {
		opts = append(opts, stash.WithNamespace(ns))
	}
	if s := env(EnvMaxSize); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("claimstash: %s=%q: want a positive number of bytes", EnvMaxSize, s)
		}
		opts = append(opts, stash.WithMaxSize(n))
	}
	keys := env(EnvLinkKeys)
	if keys == "" {
		keys = env(EnvLinkKey)
	}
	var k []links.Key
	if keys != "" {
		var err error
		if k, err = links.ParseKeys(keys); err != nil {
			return nil, fmt.Errorf("claimstash: %s: %w", EnvLinkKeys, err)
		}
	}
	_, lopts, err := links.EngineOptions(k, env(EnvShareURL), list(env(EnvTrustedOrigins))...)
	if err != nil {
		return nil, fmt.Errorf("claimstash: share links: %w", err)
	}
	return append(opts, lopts...), nil
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
