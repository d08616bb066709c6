package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/claimstash/claimstash/otelstash/otelprom"
	"github.com/claimstash/claimstash/service"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// serveJSON is serve's --json announcement.
type serveJSON struct {
	Listen     string `json:"listen"`
	URL        string `json:"url"`
	API        string `json:"api,omitempty"`
	Backend    string `json:"backend,omitempty"`
	Auth       *bool  `json:"auth,omitempty"` // nil with --no-api
	ShareLinks bool   `json:"share_links"`
	Metrics    string `json:"metrics,omitempty"`
}

// serveParams are serve's own flags.
type serveParams struct {
	listen, cert, key string
	metricsListen     string
	grace, drain      time.Duration
	sweepEvery        time.Duration
	noMetrics         bool
	api               apiParams
}

func (a *app) serveCmd() *cobra.Command {
	var p serveParams
	cmd := &cobra.Command{
		Use:     "serve",
		GroupID: "service",
		Short:   "Serve the object-store API and share links",
		Long: `Serve, on one listener, until interrupted:

  /v1/objects/...   the object-store API (Sentry objectstore's v1 HTTP API) over
                    one of the configured backends (--api-backend, default the
                    first): objectstore's official clients and claimstash's own
                    objectstore:// backend store and read stashes through it
                    with a scoped token instead of credentials for the store.
  /health, /ready   liveness, and readiness: /ready answers 503 once shutdown
                    has begun.
  /healthz          answers "ok".
  /metrics          the Prometheus metrics (off with --no-metrics, or on a
                    listener of their own with --metrics-listen): stash
                    operations by outcome with sizes and latency, backend
                    call latency, share links issued and refused, and HTTP
                    requests by method, route and status.
  everything else   the share links that "claimstash share" prints for
                    backends without native presigning (file, mem, nats), with
                    the same --link-keys (served when --link-keys is set).

Authentication is on: every API request needs a token signed by one of the
Ed25519 keys in --auth-keys (a directory of KID.pub files, as "claimstash
keygen --kind objectstore" writes them, picked up without a restart, or a JSON
key file), or a presigned URL. "claimstash token" mints tokens. serve refuses
to start without keys unless --no-auth is given, for local demos only;
--no-api serves share links (and /health, /ready) without the API.

On SIGINT or SIGTERM serve shuts down gracefully: /ready answers 503 for
--drain so load balancers stop sending requests, then the listener closes and
requests in flight get up to --grace to finish; then it exits 0. A second
signal ends it at once.

An API request whose body brings no byte for --stall-timeout (1m), or whose
client takes none for as long, is given up: an upload is answered 408 and
stores nothing, and a download is cut off.

Expired objects are never served, but their space comes back only when they
are deleted: with --sweep-every (1h, say) serve deletes the expired stashes of
its backends at start and then at that interval, as "claimstash sweep" does,
abandoned multipart uploads included. A stash renewed while a sweep runs is
kept.

Share-link downloads are verified as they stream; a stash whose bytes do not
match is cut off, never ended cleanly, and a client that asks for trailers
(TE: trailers, as claimstash itself does) is told why in the
Claimstash-Result trailer, so it fails for good instead of retrying. Range requests (one range) are answered
206, and the ETag is the stash's digest, so If-None-Match answers 304. Every
request is logged on stderr (as JSON with --json), without its query string.`,
		Example: `  claimstash keygen --kind objectstore --dir /etc/claimstash/keys
  claimstash serve -b /var/lib/claimstash --auth-keys /etc/claimstash/keys --listen :8888
  claimstash serve -b mem:// --no-auth          # a local demo, no tokens`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd, p)
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	f.StringVar(&p.cert, "tls-cert", "", "TLS certificate `file` (with --tls-key: serve https)")
	f.StringVar(&p.key, "tls-key", "", "TLS key `file`")
	f.DurationVar(&p.grace, "grace", 30*time.Second, "how long shutdown waits for in-flight requests")
	f.DurationVar(&p.drain, "drain", 5*time.Second, "how long /ready answers 503 before the listener closes, at shutdown")
	f.DurationVar(&p.sweepEvery, "sweep-every", 0, "delete expired stashes at start and then at this `interval` (0: never; \"claimstash sweep\" does it once)")
	f.BoolVar(&p.noMetrics, "no-metrics", false, "do not serve /metrics or collect metrics")
	f.StringVar(&p.metricsListen, "metrics-listen", "", "serve /metrics (plain HTTP, no token) on this `address` instead of on --listen, such as a private 127.0.0.1:9090")
	p.api.flags(f)
	return cmd
}

func (a *app) serve(cmd *cobra.Command, p serveParams) error {
	if (p.cert == "") != (p.key == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if p.grace < 0 || p.drain < 0 {
		// A negative grace would cut every request in flight at the first
		// signal, the very loss a graceful shutdown is for.
		return usagef("--grace and --drain must not be negative")
	}
	if p.sweepEvery < 0 || (p.sweepEvery > 0 && p.sweepEvery < time.Second) {
		return usagef("--sweep-every must be 0 (never) or at least 1s")
	}
	if err := p.api.check(); err != nil {
		return err
	}
	if p.noMetrics && p.metricsListen != "" {
		return usagef("--metrics-listen and --no-metrics contradict each other")
	}
	a.stopsItself.Store(true)
	ctx := cmd.Context()
	need := engineNeeds{backend: true}
	var metrics *otelprom.Exporter
	if !p.noMetrics {
		exp, inst, err := newMetrics()
		if err != nil {
			return err
		}
		defer exp.Shutdown(context.WithoutCancel(ctx))
		metrics, need.inst = exp, inst
	}
	e, err := a.openEngine(ctx, need)
	if err != nil {
		return err
	}
	defer e.Close()
	logger := a.logger()
	api, scheme, err := e.objectAPI(p.api, logger)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
	})
	metricsURL := ""
	if metrics != nil && p.metricsListen != "" {
		mln, err := net.Listen("tcp", p.metricsListen)
		if err != nil {
			return usagef("--metrics-listen %s: %v", p.metricsListen, err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", metrics)
		msrv := service.NewHTTPServer(mmux) // the API listener's limits and timeouts
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close() // after the API's shutdown: the last scrape sees it
		metricsURL = "http://" + mln.Addr().String() + "/metrics"
	} else if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	shareLinks := e.signer != nil
	if p.api.noAPI && !shareLinks {
		return usagef("--no-api leaves serve nothing to serve without --link-keys")
	}
	if shareLinks {
		h, err := e.shareHandler()
		if err != nil {
			return err
		}
		mux.Handle("/", conditional(h))
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return usagef("--listen %s: %v", p.listen, err)
	}
	proto := "http"
	if p.cert != "" {
		proto = "https"
	}
	url := proto + "://" + ln.Addr().String() + "/"
	if metrics != nil && metricsURL == "" {
		metricsURL = url + "metrics"
	}
	switch {
	case p.api.noAPI:
	case !p.api.noAuth:
		logger.Info("object API authentication on", "keys", p.api.keys)
	default:
		logger.Warn("object API WITHOUT authentication (--no-auth): anyone who reaches " + url + " may read, write and delete")
	}
	if a.common.json {
		j := serveJSON{Listen: ln.Addr().String(), URL: url, ShareLinks: shareLinks, Metrics: metricsURL}
		if !p.api.noAPI {
			auth := !p.api.noAuth
			j.API, j.Backend, j.Auth = url+"v1/objects/", scheme, &auth
		}
		if err := a.printJSON(j); err != nil {
			ln.Close()
			return err
		}
	} else {
		var what string
		switch {
		case p.api.noAPI:
			what = "share links"
		case shareLinks:
			what = "the object API (" + scheme + " backend) and share links"
		default:
			what = "the object API (" + scheme + " backend)"
		}
		line := fmt.Sprintf("serving %s on %s\n", what, url)
		if p.metricsListen != "" {
			line += "serving metrics on " + metricsURL + "\n"
		}
		if _, err := io.WriteString(a.stdout, line); err != nil {
			ln.Close() // as with --json: not serving unannounced
			return err
		}
	}
	errLog := slog.NewLogLogger(logger.Handler().WithAttrs([]slog.Attr{slog.String("component", "http")}), slog.LevelWarn)
	h := apiHandler(api, mux, p.api)
	if metrics != nil {
		// Requests by method, route and status (http.server.request.duration).
		h = otelhttp.NewHandler(routeLabel(h), "claimstash serve", otelhttp.WithMeterProvider(metrics.MeterProvider()),
			otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()))
	}
	if p.sweepEvery > 0 {
		stop := sweepEvery(ctx, p.sweepEvery, e.Sweep, logger)
		defer stop() // before the engine closes
	}
	if err := serveAPI(ctx, ln, api, accessLog(logger, h), p, errLog); err != nil {
		return fmt.Errorf("serving on %s: %w", url, err)
	}
	logger.Info("shut down")
	return nil
}

// sweepEvery runs sweep now and then every interval until ctx ends or
// the returned stop is called; stop waits for a sweep under way to end.
// Each sweep that deletes something, and each that fails, is logged.
func sweepEvery(ctx context.Context, every time.Duration, sweep func(context.Context) (int, error), logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			n, err := sweep(ctx)
			switch {
			case err != nil && ctx.Err() == nil: // cut short by shutdown is no failure
				logger.Warn("sweeping expired stashes failed; trying again at the next interval", "deleted", n, "next_in", every.String(), "err", err)
			case n > 0: // what was deleted, even by a sweep that shutdown ended
				logger.Info("swept expired stashes", "deleted", n)
			}
			if ctx.Err() != nil {
				return // never another sweep once stopped, even with a tick waiting
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// routeLabel adds the request's route (http.route) to the request metrics:
// the object API and the share links do not route through patterns that
// the metrics would see.
func routeLabel(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l, ok := otelhttp.LabelerFromContext(r.Context()); ok {
			l.Add(attribute.String("http.route", route(r.URL.Path)))
		}
		h.ServeHTTP(w, r)
	})
}

// route is the route of path, as the metrics count it.
func route(path string) string {
	switch {
	case path == "/health", path == "/ready", path == "/healthz", path == "/metrics":
		return path
	case strings.HasPrefix(path, "/v1/objects/"):
		return "/v1/objects/{usecase}/{scopes}/{key}"
	case strings.HasPrefix(path, "/v1/objects:batch/"):
		return "/v1/objects:batch/{usecase}/{scopes}/"
	case strings.HasPrefix(path, "/v1/objects:multipart/"):
		return "/v1/objects:multipart/{usecase}/{scopes}/{key}"
	case strings.HasPrefix(path, "/v1/objects:multipart:parts/"):
		return "/v1/objects:multipart:parts/{usecase}/{scopes}/{key}"
	case strings.HasPrefix(path, "/v1/objects:multipart:complete/"):
		return "/v1/objects:multipart:complete/{usecase}/{scopes}/{key}"
	case strings.HasPrefix(path, "/v1/"):
		return "/v1/{other}"
	default:
		return "/" // share links, and paths that are not found (as the mux names it)
	}
}
