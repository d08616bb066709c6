package miniotest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitReadyWaitsForObjectLayer: a server whose liveness endpoint says
// 200 (with MinIO's "offline" status header) while its object layer still
// initialises is not ready; waitReady returns only once the cluster check
// passes.
func TestWaitReadyWaitsForObjectLayer(t *testing.T) {
	var initialised atomic.Bool
	var clusterChecks atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/minio/health/live", "/minio/health/ready":
			if !initialised.Load() {
				w.Header().Set("X-Minio-Server-Status", "offline")
			}
			w.WriteHeader(http.StatusOK)
		case "/minio/health/cluster":
			if clusterChecks.Add(1) >= 3 {
				initialised.Store(true)
			}
			if !initialised.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	if err := waitReady(srv.URL, nil); err != nil {
		t.Fatal(err)
	}
	if !initialised.Load() {
		t.Fatal("waitReady returned before the object layer was initialised")
	}
	if n := clusterChecks.Load(); n != 3 {
		t.Errorf("%d cluster checks, want 3", n)
	}
}

// TestWaitReadyServerExits: a server that exits before it is ready is
// reported at once, not after readyTimeout.
func TestWaitReadyServerExits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	exited := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(exited) })
	start := time.Now()
	if err := waitReady(srv.URL, exited); err == nil {
		t.Fatal("waitReady succeeded against a server that never got ready")
	}
	if d := time.Since(start); d > readyTimeout/2 {
		t.Errorf("waitReady took %v to notice the exit", d)
	}
}
