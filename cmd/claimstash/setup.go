package main

// setup.go is the one place that builds engines and names the stash and
// claimcheck packages' constructors and options; the commands only call the
// engine's methods.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/settings"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/otelstash/otelprom"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	_ "github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/links"
	_ "github.com/claimstash/claimstash/stash/memstash"
	_ "github.com/claimstash/claimstash/stash/natsstash"
	_ "github.com/claimstash/claimstash/stash/objectstash"
	_ "github.com/claimstash/claimstash/stash/s3stash"
	"github.com/nats-io/nats.go"
)

// engineNeeds says what a command needs of its engine.
type engineNeeds struct {
	backend bool   // the command cannot work without a backend
	link    string // a share link the command will read: trust it if this configuration made it
	// wrap, if set, wraps each backend's driver (put counts stored bytes).
	wrap func(driver.Driver) driver.Driver
	// inst, if set, instruments the engine and its share links (serve's /metrics).
	inst *otelstash.Instrumentation
}

// engine is a configured stash engine and the backends it reads and writes.
type engine struct {
	*stash.Engine
	drivers []driver.Driver
	signer  *links.HMAC // with --link-keys: signs share links and verifies them in serve
	logger  *slog.Logger
	inst    *otelstash.Instrumentation // counts refused share links too, when set
}

// Close closes the engine and its backends.
func (e *engine) Close() error {
	err := e.Engine.Close()
	for _, d := range e.drivers {
		err = errors.Join(err, d.Close())
	}
	return err
}

// parseEach parses each value of a flag given several times (and of its
// variable) with parse, which takes a comma-separated list, and joins the
// lists.
func parseEach(raws []string, parse func(string) ([]string, error)) ([]string, error) {
	var all []string
	for _, raw := range raws {
		v, err := parse(raw)
		if err != nil {
			return nil, err
		}
		all = append(all, v...)
	}
	return all, nil
}

// openEngine builds the engine from the common flags (and their variables).
// Each value goes through the parser claimstash.OpenEnv reads its variable
// with, so the command line and a service configured alike build the same
// engine; an error names the flag, or the variable, the value came from.
func (a *app) openEngine(ctx context.Context, need engineNeeds) (*engine, error) {
	c := &a.common
	named := func(flag string, err error) error { return usagef("%s: %v", setting(a.cmd, flag), err) }
	backends, err := parseEach(c.backends, settings.ParseBackends)
	if err != nil {
		return nil, named("backend", err)
	}
	if need.backend && len(backends) == 0 {
		return nil, usagef("no backend: set --backend or CLAIMSTASH_BACKEND (a directory, or a URL such as file:///var/lib/claimstash)")
	}
	namespace, err := settings.ParseNamespace(c.namespace)
	if err != nil {
		return nil, named("namespace", err)
	}
	keys, err := settings.ParseLinkKeys(c.linkKeys)
	if err != nil {
		return nil, named("link-keys", err)
	}
	shareURL, err := settings.ParseShareURL(c.shareURL)
	if err != nil {
		return nil, named("share-url", err)
	}
	trust, err := parseEach(c.trust, settings.ParseOrigins)
	if err != nil {
		return nil, named("trusted-origins", err)
	}

	logger := a.logger()
	e := &engine{logger: logger, inst: need.inst}
	opts := []stash.Option{stash.WithLogger(logger)}
	if need.inst != nil {
		opts = append(opts, need.inst.EngineOption())
	}
	fail := func(err error) (*engine, error) {
		for _, d := range e.drivers {
			_ = d.Close()
		}
		return nil, err
	}
	for _, u := range backends {
		scheme, _, _ := strings.Cut(u, ":")
		d, err := openDriver(ctx, u, a.getenv)
		if err != nil {
			if unreachable(err) {
				// A backend that is down is a failure (exit 1), as
				// "help exit-codes" says, not a wrong setting.
				err = fmt.Errorf("%s: %s backend: %w", setting(a.cmd, "backend"), scheme, err)
			} else {
				err = named("backend", fmt.Errorf("%s backend: %w", scheme, err))
			}
			return fail(err)
		}
		e.drivers = append(e.drivers, d)
		if need.wrap != nil {
			d = need.wrap(d)
		}
		opts = append(opts, stash.WithBackend(d))
	}
	if namespace != "" {
		opts = append(opts, stash.WithNamespace(namespace))
	}
	if need.link != "" {
		if o := e.ownOrigin(ctx, need.link); o != "" {
			trust = append(trust, o)
		}
	}
	signer, lopts, err := links.EngineOptions(keys, shareURL, trust...)
	if err != nil {
		// Each value was checked on its own above.
		return fail(usagef("--link-keys, --share-url and --trusted-origins: %v", err))
	}
	e.signer = signer
	opts = append(opts, lopts...)
	if c.maxSize > 0 {
		opts = append(opts, stash.WithMaxSize(c.maxSize))
	}
	eng, err := stash.New(opts...)
	if err != nil {
		return fail(usageError{err})
	}
	e.Engine = eng
	return e, nil
}

// ownOrigin returns the origin of link if one of this configuration's
// backends presigns links there (an S3 backend's presigned URL), so that get
// reads the link share printed without --trusted-origins. The engine's own
// share URL is trusted by the engine itself.
func (e *engine) ownOrigin(ctx context.Context, link string) string {
	l, err := stash.ParseLink(link)
	if err != nil || !l.Presigned {
		return ""
	}
	want := strings.ToLower(l.URL.Scheme + "://" + l.URL.Host)
	for _, d := range e.drivers {
		s, ok := d.(driver.Signer)
		if !ok || d.Scheme() != l.Address.Scheme {
			continue
		}
		own, err := s.SignURL(ctx, driver.LinkRequest{Scheme: l.Address.Scheme, Namespace: l.Address.Namespace,
			Key: l.Address.Key(), Expires: time.Now().Add(time.Minute)})
		if err != nil {
			continue
		}
		if ou, err := url.Parse(own); err == nil && strings.ToLower(ou.Scheme+"://"+ou.Host) == want {
			return want
		}
	}
	return ""
}

// shareHandler serves the links this configuration signs.
func (e *engine) shareHandler() (http.Handler, error) {
	if e.signer == nil {
		return nil, usagef("serving share links needs --link-keys (or CLAIMSTASH_LINK_KEYS; keygen makes a key)")
	}
	h := http.Handler(links.NewHandler(e.Engine, e.signer, links.WithLogger(e.logger)))
	if e.inst != nil {
		h = e.inst.ShareHandler(h)
	}
	return h, nil
}

// newMetrics builds serve's metrics: the Prometheus exporter that /metrics
// serves and the instrumentation of the engine that records into it.
func newMetrics() (*otelprom.Exporter, *otelstash.Instrumentation, error) {
	exp, err := otelprom.New()
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	inst, err := exp.Instrumentation()
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	return exp, inst, nil
}

// logger is where the engine logs what it cannot return (a failed
// access-time update), on stderr.
func (a *app) logger() *slog.Logger {
	if a.common.json {
		return slog.New(slog.NewJSONHandler(a.stderr, nil))
	}
	return slog.New(slog.NewTextHandler(a.stderr, nil))
}

// openDriver opens one backend by URL.
//
// An S3 backend with an endpoint= (MinIO, Ceph: not AWS), or with
// credentials in the environment, never gets them from the EC2 instance
// metadata service, and the SDK would print warnings on stderr while it
// tries: for those the service is turned off, unless
// AWS_EC2_METADATA_DISABLED says otherwise.
func openDriver(ctx context.Context, rawURL string, getenv func(string) string) (driver.Driver, error) {
	if u, err := url.Parse(rawURL); err == nil && u.Scheme == "s3" && getenv("AWS_EC2_METADATA_DISABLED") == "" &&
		(u.Query().Has("endpoint") || getenv("AWS_ACCESS_KEY_ID") != "") {
		if err := os.Setenv("AWS_EC2_METADATA_DISABLED", "true"); err != nil {
			return nil, err
		}
	}
	return stash.OpenDriver(ctx, rawURL)
}

// unreachable reports an error of a backend that did not answer: a refused
// or timed-out connection, a NATS server that is not up.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, nats.ErrNoServers) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded)
}

// backendHint adds what an operator can do about a backend failure the
// message alone does not explain.
func backendHint(err error) error {
	if err != nil && strings.Contains(err.Error(), "get credentials:") {
		return fmt.Errorf("%w (no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)", err)
	}
	return err
}

// putParams are put's per-stash settings.
type putParams struct {
	ttl, tti    time.Duration
	contentType string
	origin      string
	noInline    bool
	meta        map[string]string
}

// createOptions turns put's flags into per-stash options.
func createOptions(p putParams) []stash.CreateOption {
	var opts []stash.CreateOption
	if p.ttl > 0 {
		opts = append(opts, stash.TTL(p.ttl))
	}
	if p.tti > 0 {
		opts = append(opts, stash.TTI(p.tti))
	}
	if p.contentType != "" {
		opts = append(opts, stash.ContentType(p.contentType))
	}
	if p.origin != "" {
		opts = append(opts, stash.Origin(p.origin))
	}
	if p.noInline {
		opts = append(opts, stash.NoInline())
	}
	if len(p.meta) > 0 {
		opts = append(opts, stash.Metadata(p.meta))
	}
	return opts
}

// stashName is the stash name put gives a file: its base name, made valid
// by the same namer that names the stashes of claim-checked messages.
func stashName(path string) string {
	return claimcheck.DefaultNamer(filepath.Base(path), nil)
}

// createFrom stores r under name. Errors are marked as a write's, so a
// missing bucket is not read as a missing stash.
func (e *engine) createFrom(ctx context.Context, name string, r io.Reader, p putParams) (*stash.Stash, error) {
	s, err := e.CreateFrom(ctx, name, r, createOptions(p)...)
	if err != nil {
		return nil, putError{err}
	}
	return s, nil
}

// checkLinkKeys checks keys as --link-keys reads them.
func checkLinkKeys(keys string) error {
	_, err := settings.ParseLinkKeys(keys)
	return err
}
