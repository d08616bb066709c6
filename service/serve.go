package service

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// Shutdown defaults for Serve.
const (
	// DefaultDrainDelay is how long Serve keeps serving, with /ready
	// answering 503, before it stops accepting connections, so that load
	// balancers notice first.
	DefaultDrainDelay = 5 * time.Second
	// DefaultShutdownTimeout bounds how long Serve waits for requests in
	// flight once it stops accepting.
	DefaultShutdownTimeout = 30 * time.Second
)

// Handler routes objectstore's API (/v1/objects…, /health, /ready) to s and
// every other path to other (nil: 404), so the API can be served beside
// claimstash's share links on one listener.
func Handler(s *Server, other http.Handler) http.Handler {
	if other == nil {
		return s
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/health" || p == "/ready" || strings.HasPrefix(p, "/v1/objects/") || strings.HasPrefix(p, "/v1/objects:") {
			s.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// NewHTTPServer is an http.Server for h with the service's header limit and
// timeouts that suit streaming large bodies (no overall read or write
// timeout, a header timeout, an idle timeout).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// A ServeOption configures Serve.
type ServeOption interface{ applyServe(*serveConfig) }

type serveConfig struct {
	drain, grace      time.Duration
	certFile, keyFile string
	errorLog          *log.Logger
}

type serveOption func(*serveConfig)

func (f serveOption) applyServe(c *serveConfig) { f(c) }

// WithDrainDelay sets how long Serve keeps serving with /ready answering 503
// before it stops accepting (DefaultDrainDelay; negative: none).
func WithDrainDelay(d time.Duration) ServeOption {
	return serveOption(func(c *serveConfig) { c.drain = d })
}

// WithShutdownTimeout sets how long Serve waits for requests in flight
// (DefaultShutdownTimeout).
func WithShutdownTimeout(d time.Duration) ServeOption {
	return serveOption(func(c *serveConfig) { c.grace = d })
}

// WithTLS serves https with the certificate and key in these PEM files.
func WithTLS(certFile, keyFile string) ServeOption {
	return serveOption(func(c *serveConfig) { c.certFile, c.keyFile = certFile, keyFile })
}

// WithErrorLog sets the http.Server's error log (connection-level errors).
func WithErrorLog(l *log.Logger) ServeOption {
	return serveOption(func(c *serveConfig) { c.errorLog = l })
}

// Serve serves h (usually Handler(s, shareLinks)) on ln until ctx is done,
// then shuts down gracefully: it marks s draining (/ready answers 503),
// keeps serving for the drain delay, stops accepting, and waits up to the
// shutdown timeout for requests in flight. It returns nil after a clean
// shutdown.
func Serve(ctx context.Context, ln net.Listener, s *Server, h http.Handler, opts ...ServeOption) error {
	c := serveConfig{drain: DefaultDrainDelay, grace: DefaultShutdownTimeout}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.applyServe(&c)
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return errors.New("service: a TLS certificate and key go together")
	}
	srv := NewHTTPServer(h)
	srv.ErrorLog = c.errorLog
	errc := make(chan error, 1)
	go func() {
		if c.certFile != "" {
			errc <- srv.ServeTLS(ln, c.certFile, c.keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Drain()
	if c.drain > 0 {
		t := time.NewTimer(c.drain)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
