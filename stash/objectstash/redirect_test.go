package objectstash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/claimstash/claimstash/stash/objectstash"
)

// TestRedirectNotFollowed: objectstore never redirects. A server that
// does must not get the request's token sent on to the host it names,
// nor that host's answer read as the object.
func TestRedirectNotFollowed(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("x-os-auth") + r.Header.Get("Authorization"))
		w.Header().Set("x-sn-size", "5")
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "other")
	}))
	defer other.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// localhost is another host to net/http than 127.0.0.1.
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusFound)
	}))
	defer ts.Close()
	s, err := objectstash.New(ts.URL, objectstash.WithToken("secret-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rc, _, err := s.Get(ctx, "ns", lyingKey)
	if err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Errorf("Get through a redirect: %q, want an error", b)
	}
	var se *objectstash.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusFound {
		t.Errorf("Get through a redirect: %v, want the 302 as a StatusError", err)
	}
	if _, err := s.Stat(ctx, "ns", lyingKey); err == nil {
		t.Error("Stat through a redirect: no error")
	}
	if v, _ := leaked.Load().(string); v != "" {
		t.Errorf("the redirect's target got the token %q", v)
	}
}
