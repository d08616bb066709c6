package otelstash

import (
	"context"
	"net/http"
)

// ShareHandler wraps a share-link handler (links.NewHandler, or anything that serves
// share links) so that the links it refuses (403: a tampered, malformed or
// unknown-key link) are counted in MetricShareLinks with outcome refused.
// Trace the requests themselves with the HTTP server's own instrumentation
// (otelhttp).
func (i *Instrumentation) ShareHandler(h http.Handler) http.Handler {
	if i == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if sw.status == http.StatusForbidden {
				i.countRefused(r.Context())
			}
		}()
		h.ServeHTTP(sw, r)
	})
}

// countRefused counts a refused link. It is a function of its own so that
// its recover stops only its own panics, never the handler's (such as
// http.ErrAbortHandler) that the deferred call above may run during.
func (i *Instrumentation) countRefused(ctx context.Context) {
	defer contained("share link measurement")
	i.links.Add(ctx, 1, i.opts(setKey{kind: kindLink, outcome: OutcomeRefused}).add...)
}

// statusWriter remembers the status of a response. Unwrap lets
// http.ResponseController reach the writer underneath.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
