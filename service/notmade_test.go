package service_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/service"
)

// A Server that New did not build has no storage and no keys: every object
// route answers 500 with the reason, and none panics or serves anything.
func TestServerNotMadeByNew(t *testing.T) {
	srv := httptest.NewServer(new(service.Server))
	defer srv.Close()
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/objects/u/_/k"},
		{http.MethodHead, "/v1/objects/u/_/k"},
		{http.MethodPut, "/v1/objects/u/_/k"},
		{http.MethodDelete, "/v1/objects/u/_/k"},
		{http.MethodPost, "/v1/objects:batch/u/_/"},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v (the handler panicked?)", c.method, c.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s %s: %d, want 500", c.method, c.path, resp.StatusCode)
		}
	}
}
