package main

// api.go is the one place that names the service and osauth packages: the
// object-store API that serve hosts, and the keys and tokens for it.

import (
	"context"
	"errors"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
	"github.com/spf13/pflag"
)

// apiParams are serve's flags for the object-store API.
type apiParams struct {
	keys      string
	noAuth    bool
	noAPI     bool
	issuers   []string
	backend   string
	maxBody   int64
	maxScopes int
	stall     time.Duration
}

func (p *apiParams) flags(f *pflag.FlagSet) {
	f.StringVar(&p.keys, "auth-keys", "", "public keys that sign API tokens: a `directory` of KID.pub files (see keygen\n--kind objectstore) or a JSON key file, reread so keys change without a restart")
	f.BoolVar(&p.noAuth, "no-auth", false, "serve the API without authentication: for local demos only")
	f.BoolVar(&p.noAPI, "no-api", false, "serve share links (and /health, /ready) only, not the object-store API")
	f.StringSliceVar(&p.issuers, "auth-issuer", nil, "`issuers` a token's iss may name, comma-separated (default: tokens without iss only)")
	f.StringVar(&p.backend, "api-backend", "", "`scheme` of the backend the API stores in, one of --backend (default: the first)")
	f.Var(newBytesValue(&p.maxBody), "max-body", "largest API upload in `bytes`, such as 100MB or 1GiB (default 5 GiB)")
	f.IntVar(&p.maxScopes, "max-scopes", 0, "most scopes an API path may name (default 16)")
	f.DurationVar(&p.stall, "stall-timeout", service.DefaultStallTimeout, "give up on an API request whose body brings nothing, or whose client reads nothing\n(at least 1 MiB each time), for this `duration` (0: never)")
}

// check refuses contradictory or missing settings before anything is opened.
func (p *apiParams) check() error {
	switch {
	case p.noAPI && (p.noAuth || p.keys != "" || len(p.issuers) > 0 || p.backend != "" || p.maxBody != 0 || p.maxScopes != 0):
		return usagef("--no-api serves no API: leave out --auth-keys, --no-auth, --auth-issuer, --api-backend, --max-body and --max-scopes")
	case p.noAPI:
		return nil
	case p.noAuth && (p.keys != "" || len(p.issuers) > 0):
		return usagef("--no-auth turns authentication off: leave out --auth-keys and --auth-issuer")
	case !p.noAuth && p.keys == "":
		return usagef("serve needs --auth-keys (a directory of public keys that \"claimstash keygen --kind objectstore\" writes, or a JSON key file), --no-auth for a local demo, or --no-api to serve share links only")
	case p.maxBody < 0:
		return usagef("--max-body must be positive")
	case p.maxScopes < 0:
		return usagef("--max-scopes must be positive")
	case p.stall < 0:
		return usagef("--stall-timeout must be 0 (never) or positive")
	}
	return nil
}

// objectAPI is the object-store API over the engine's backend for p.backend
// (default: the first), and that backend's scheme.
func (e *engine) objectAPI(p apiParams, logger *slog.Logger) (*service.Server, string, error) {
	scheme := p.backend
	if scheme == "" {
		scheme = e.drivers[0].Scheme()
	}
	scheme = strings.TrimSuffix(scheme, "://")
	d, ok := e.Backend(scheme)
	if !ok {
		have := make([]string, 0, len(e.drivers))
		for _, d := range e.drivers {
			have = append(have, d.Scheme())
		}
		return nil, "", usagef("--api-backend %q: no such backend configured (have %s)", p.backend, strings.Join(have, ", "))
	}
	opts := []service.Option{service.WithLogger(logger)}
	if p.noAuth || p.noAPI { // --no-api: only /health and /ready are routed to it
		opts = append(opts, service.WithoutAuth())
	} else {
		keys, err := osauth.LoadKeys(p.keys)
		if err != nil {
			return nil, "", usagef("--auth-keys %s: %v", p.keys, err)
		}
		opts = append(opts, service.WithAuth(osauth.NewVerifier(keys, osauth.WithIssuers(p.issuers...))))
	}
	if p.maxBody > 0 {
		opts = append(opts, service.WithMaxBodySize(p.maxBody))
	}
	if p.maxScopes > 0 {
		opts = append(opts, service.WithMaxScopes(p.maxScopes))
	}
	if p.stall == 0 {
		opts = append(opts, service.WithStallTimeout(-1))
	} else {
		opts = append(opts, service.WithStallTimeout(p.stall))
	}
	s, err := service.New(d, opts...)
	if err != nil {
		return nil, "", usageError{err}
	}
	return s, scheme, nil
}

// apiHandler routes the API's paths to s and the rest to mux; with --no-api
// only /health and /ready.
func apiHandler(s *service.Server, mux *http.ServeMux, p apiParams) http.Handler {
	if p.noAPI {
		mux.Handle("GET /health", s)
		mux.Handle("GET /ready", s)
		return mux
	}
	return service.Handler(s, mux)
}

// serveAPI serves h on ln until ctx ends, then drains and shuts down.
func serveAPI(ctx context.Context, ln net.Listener, s *service.Server, h http.Handler, p serveParams, errLog *log.Logger) error {
	opts := []service.ServeOption{service.WithShutdownTimeout(p.grace), service.WithErrorLog(errLog)}
	if p.drain > 0 {
		opts = append(opts, service.WithDrainDelay(p.drain))
	} else {
		opts = append(opts, service.WithDrainDelay(-1))
	}
	if p.cert != "" {
		opts = append(opts, service.WithTLS(p.cert, p.key))
	}
	return service.Serve(ctx, ln, s, h, opts...)
}

// objectstoreKey writes an Ed25519 key pair for the object-store API into
// p.dir, and its maximum permissions when p.maxPerms names any.
func objectstoreKey(p keyParams) (keyJSON, error) {
	dir, err := absDir(p.dir)
	if err != nil {
		return keyJSON{}, err
	}
	kid := p.id
	if kid == "" {
		kid = osauth.NewKid()
	}
	if err := osauth.ValidKid(kid); err != nil {
		return keyJSON{}, usagef("--kid %q: %v", kid, err)
	}
	var perms []osauth.Permission
	if p.maxPerms != "" {
		if perms, err = osauth.ParsePermissions(p.maxPerms); err != nil {
			return keyJSON{}, usagef("--max-permissions %q: %v", p.maxPerms, err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return keyJSON{}, usagef("--dir: %v", err)
	}
	// The maximum goes first: a key whose permissions file failed to be
	// written would grant everything.
	var k keyJSON
	if len(perms) == 0 {
		// One left from an earlier key of that name would cap this one
		// without a word.
		if _, err := os.Lstat(filepath.Join(dir, kid+osauth.PermissionsSuffix)); err == nil {
			return keyJSON{}, usagef("--kid %s: %s already holds %s%s, which would cap the new key: remove it, or give --max-permissions", kid, dir, kid, osauth.PermissionsSuffix)
		}
	}
	if len(perms) > 0 {
		if err := osauth.WriteMaxPermissions(dir, kid, perms); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return keyJSON{}, usagef("--kid %s: a key of that name is already in %s (keygen never replaces a key)", kid, dir)
			}
			return keyJSON{}, err
		}
		k.PermissionsFile = filepath.Join(dir, kid+osauth.PermissionsSuffix)
		for _, p := range perms {
			k.MaxPermissions = append(k.MaxPermissions, string(p))
		}
	}
	files, err := osauth.GenerateKey(dir, kid)
	if err != nil {
		if k.PermissionsFile != "" {
			_ = os.Remove(k.PermissionsFile)
		}
		if errors.Is(err, fs.ErrExist) {
			return keyJSON{}, usagef("--kid %s: a key of that name is already in %s (keygen never replaces a key)", kid, dir)
		}
		return keyJSON{}, err
	}
	k.Kind, k.ID, k.PrivateKey, k.PublicKey = "objectstore", files.Kid, files.Private, files.Public
	return k, nil
}

// tokenParams are token's flags.
type tokenParams struct {
	kid, key, usecase, scopes, perms string
	lifetime                         time.Duration
}

// tokenJSON is token's --json output.
type tokenJSON struct {
	Token       string    `json:"token"`
	Kid         string    `json:"kid"`
	Usecase     string    `json:"usecase"`
	Scopes      string    `json:"scopes"`
	Permissions []string  `json:"permissions"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// mintToken signs a token as p describes.
func mintToken(p tokenParams, now time.Time) (tokenJSON, error) {
	if p.key == "" {
		return tokenJSON{}, usagef("token needs --key, the private key file (KID.key) that keygen --kind objectstore wrote")
	}
	if p.usecase == "" {
		return tokenJSON{}, usagef("token needs --usecase (the API's first path segment, or * for any)")
	}
	if p.lifetime <= 0 {
		return tokenJSON{}, usagef("--lifetime must be positive")
	}
	kid := p.kid
	if kid == "" {
		kid = strings.TrimSuffix(filepath.Base(p.key), osauth.PrivateKeySuffix)
	}
	if err := osauth.ValidKid(kid); err != nil {
		return tokenJSON{}, usagef("--kid %q: %v", kid, err)
	}
	if p.usecase != osauth.Wildcard {
		if err := service.ValidUsecase(p.usecase); err != nil {
			return tokenJSON{}, usagef("--usecase %q: %v", p.usecase, err)
		}
	}
	scopes, err := osauth.ParseScopes(p.scopes)
	if err != nil {
		return tokenJSON{}, usagef("--scopes %q: %v", p.scopes, err)
	}
	perms, err := osauth.ParsePermissions(p.perms)
	if err != nil {
		return tokenJSON{}, usagef("--permissions %q: %v", p.perms, err)
	}
	tok, err := osauth.Mint(kid, p.key, p.usecase, scopes, perms, p.lifetime)
	if err != nil {
		return tokenJSON{}, usagef("--key %s: %v", p.key, err)
	}
	j := tokenJSON{Token: tok, Kid: kid, Usecase: p.usecase, Scopes: service.FormatScopes(scopes),
		ExpiresAt: now.Add(p.lifetime).UTC().Truncate(time.Second)}
	for _, p := range perms {
		j.Permissions = append(j.Permissions, string(p))
	}
	return j, nil
}
