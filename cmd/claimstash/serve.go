package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// serveJSON is serve's --json announcement.
type serveJSON struct {
	Listen string `json:"listen"`
	URL    string `json:"url"`
}

func (a *app) serveCmd() *cobra.Command {
	var (
		listen, cert, key string
		grace             time.Duration
	)
	cmd := &cobra.Command{
		Use:     "serve",
		GroupID: "links",
		Short:   "Serve share links (and /healthz)",
		Long: `Serve the share links that "claimstash share" prints for backends without
native presigning (file, mem, nats), with the same --link-keys, until
interrupted; then shut down gracefully, giving in-flight downloads up to
--grace to finish, and exit 0.

Downloads are verified as they stream; a stash whose bytes do not match is
cut off, never ended cleanly. Range requests (one range) are answered 206,
and the ETag is the stash's digest, so If-None-Match answers 304. Every
request is logged on stderr (as JSON with --json). GET /healthz answers "ok".`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (cert == "") != (key == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			ctx := cmd.Context()
			e, err := a.openEngine(ctx, engineNeeds{backend: true})
			if err != nil {
				return err
			}
			defer e.Close()
			h, err := e.shareHandler()
			if err != nil {
				return err
			}
			logger := a.logger()
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				_, _ = io.WriteString(w, "ok\n")
			})
			mux.Handle("/", conditional(h))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usagef("--listen %s: %v", listen, err)
			}
			srv := &http.Server{
				Handler:           accessLog(logger, mux),
				ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout:       2 * time.Minute,
				ErrorLog:          slog.NewLogLogger(logger.Handler().WithAttrs([]slog.Attr{slog.String("component", "http")}), slog.LevelWarn),
				BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
			}
			scheme := "http"
			if cert != "" {
				scheme = "https"
			}
			url := scheme + "://" + ln.Addr().String() + "/"
			if a.common.json {
				if err := a.printJSON(serveJSON{Listen: ln.Addr().String(), URL: url}); err != nil {
					ln.Close()
					return err
				}
			} else {
				a.printf("serving share links on %s\n", url)
			}
			errc := make(chan error, 1)
			go func() {
				if cert != "" {
					errc <- srv.ServeTLS(ln, cert, key)
				} else {
					errc <- srv.Serve(ln)
				}
			}()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			err = srv.Shutdown(sctx)
			if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
				err = serr
			}
			if err != nil {
				return fmt.Errorf("shutting down: %w", err)
			}
			logger.Info("shut down")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	f.StringVar(&cert, "tls-cert", "", "TLS certificate `file` (with --tls-key: serve https)")
	f.StringVar(&key, "tls-key", "", "TLS key `file`")
	f.DurationVar(&grace, "grace", 30*time.Second, "how long shutdown waits for in-flight requests")
	return cmd
}
