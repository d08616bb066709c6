package service

import (
	"context"
	"errors"
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

// Serve serves h on ln until ctx is done, then shuts down gracefully: it
// marks s draining (/ready answers 503), keeps serving for drainDelay, stops
// accepting, and waits up to shutdownTimeout for requests in flight (zero
// values: DefaultDrainDelay, DefaultShutdownTimeout). It returns nil after a
// clean shutdown.
func Serve(ctx context.Context, ln net.Listener, s *Server, h http.Handler, drainDelay, shutdownTimeout time.Duration) error {
	if drainDelay == 0 {
		drainDelay = DefaultDrainDelay
	}
	if shutdownTimeout == 0 {
		shutdownTimeout = DefaultShutdownTimeout
	}
	srv := NewHTTPServer(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Drain()
	if drainDelay > 0 {
		t := time.NewTimer(drainDelay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
