package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads base's /metrics and parses it as Prometheus does.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// sample is the value of the counter, or the count of the histogram, named
// name whose labels include want ("k=v" each); -1 if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestServeMetrics(t *testing.T) {
	be, _ := backend(t)
	keys := "--link-keys=" + linkKeys()
	base, _ := startServe(t, be, keys, "--no-auth")

	// Through the object API: one put, two reads of it, one missing object.
	data := randomBytes(100_000)
	obj := base + "/v1/objects/testing/_/metered"
	if code, body := httpDo(t, http.MethodPut, obj, "", bytes.NewReader(data)); code != 200 {
		t.Fatalf("PUT %s: %d %s", obj, code, body)
	}
	for range 2 {
		if code, body := httpDo(t, http.MethodGet, obj, "", nil); code != 200 || !bytes.Equal(body, data) {
			t.Fatalf("GET %s: %d, %d bytes", obj, code, len(body))
		}
	}
	if code, _ := httpDo(t, http.MethodGet, obj+"-missing", "", nil); code != 404 {
		t.Fatalf("GET of a missing object: %d", code)
	}
	// Through a share link: the engine opens the stash; a tampered link is refused.
	shared := randomBytes(3000)
	addr := mustCLI(t, bytes.NewReader(shared), "put", be, "--name", "shared")
	link := mustCLI(t, nil, "share", be, keys, "--share-url="+base+"/s/", addr)
	if code, body := httpDo(t, http.MethodGet, link, "", nil); code != 200 || !bytes.Equal(body, shared) {
		t.Fatalf("GET link: %d, %d bytes", code, len(body))
	}
	if code, _ := httpDo(t, http.MethodGet, strings.Replace(link, "exp=", "exp=9", 1), "", nil); code/100 != 4 {
		t.Fatalf("GET tampered link: %d", code)
	}

	fams := scrape(t, base)
	api := "http_route=/v1/objects/{usecase}/{scopes}/{key}"
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		// The backend calls the API made, and the engine's (file backend).
		{"claimstash_backend_duration_seconds", []string{"claimstash_backend_call=put", "claimstash_stash_scheme=file", "claimstash_outcome=ok"}, 1},
		{"claimstash_stash_duration_seconds", []string{"claimstash_outcome=ok"}, 1},
		{"claimstash_share_links_total", []string{"claimstash_outcome=refused"}, 1},
		{"claimstash_stash_duration_seconds", []string{"claimstash_stash_operation=open", "claimstash_stash_scheme=file"}, 1},
		{"http_server_request_duration_seconds", []string{"http_request_method=GET", "http_route=/", "http_response_status_code=403"}, 1},
		// Requests by method, route and status.
		{"http_server_request_duration_seconds", []string{"http_request_method=PUT", api, "http_response_status_code=200"}, 1},
		{"http_server_request_duration_seconds", []string{"http_request_method=GET", api, "http_response_status_code=200"}, 2},
		{"http_server_request_duration_seconds", []string{"http_request_method=GET", api, "http_response_status_code=404"}, 1},
		{"http_server_request_duration_seconds", []string{"http_request_method=GET", "http_route=/", "http_response_status_code=200"}, 1},
		{"http_server_request_body_size_bytes", []string{"http_request_method=PUT", api}, 1},
	} {
		if got := sample(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The bytes the API received and sent for the object.
	if f := fams["http_server_request_body_size_bytes"]; f != nil {
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
		}
		if sum != float64(len(data)) {
			t.Errorf("request bytes %v, want %d", sum, len(data))
		}
	}
	if t.Failed() {
		for name, f := range fams {
			for _, m := range f.GetMetric() {
				t.Logf("%s %v", name, fmt.Sprint(m.GetLabel()))
			}
		}
	}
}

func TestServeNoMetrics(t *testing.T) {
	be, _ := backend(t)
	base, _ := startServe(t, be, "--no-auth", "--no-metrics")
	if code, _ := httpDo(t, http.MethodGet, base+"/metrics", "", nil); code != http.StatusNotFound {
		t.Errorf("/metrics with --no-metrics: %d, want 404", code)
	}
	t.Setenv("CLAIMSTASH_NO_METRICS", "true")
	base, _ = startServe(t, be, "--no-auth")
	if code, _ := httpDo(t, http.MethodGet, base+"/metrics", "", nil); code != http.StatusNotFound {
		t.Errorf("/metrics with CLAIMSTASH_NO_METRICS=true: %d, want 404", code)
	}
}

// With --metrics-listen, /metrics moves to a listener of its own, which
// serve announces; the API's listener no longer answers it.
func TestServeMetricsListen(t *testing.T) {
	be, _ := backend(t)
	hello, _ := startServeHello(t, be, "--no-auth", "--metrics-listen", "127.0.0.1:0")
	base := strings.TrimSuffix(hello.URL, "/")
	if hello.Metrics == "" || strings.HasPrefix(hello.Metrics, base) {
		t.Fatalf("serve announced metrics at %q, want a listener other than %s", hello.Metrics, base)
	}
	obj := base + "/v1/objects/testing/_/metered"
	if code, body := httpDo(t, http.MethodPut, obj, "", bytes.NewReader(randomBytes(1000))); code != 200 {
		t.Fatalf("PUT %s: %d %s", obj, code, body)
	}
	if code, _ := httpDo(t, http.MethodGet, base+"/metrics", "", nil); code != http.StatusNotFound {
		t.Errorf("/metrics on the API listener with --metrics-listen: %d, want 404", code)
	}
	fams := scrape(t, strings.TrimSuffix(hello.Metrics, "/metrics"))
	if got := sample(fams, "http_server_request_duration_seconds", "http_request_method=PUT", "http_response_status_code=200"); got != 1 {
		t.Errorf("the PUT on the API listener, as the metrics listener counts it: %v, want 1", got)
	}
	if _, errs, code := cli(t, nil, "serve", be, "--no-auth", "--no-metrics", "--metrics-listen", "127.0.0.1:0"); code != 2 || !strings.Contains(errs, "contradict") {
		t.Errorf("--metrics-listen with --no-metrics: exit %d, %s; want a usage error", code, errs)
	}
}

// TestRouteLabel: each route of the API is counted under its own label,
// with no usecase, scope or key in it.
func TestRouteLabel(t *testing.T) {
	for path, want := range map[string]string{
		"/health":                               "/health",
		"/v1/objects/testing/org=42/a/b":        "/v1/objects/{usecase}/{scopes}/{key}",
		"/v1/objects:batch/testing/_/":          "/v1/objects:batch/{usecase}/{scopes}/",
		"/v1/objects:multipart/testing/_/":      "/v1/objects:multipart/{usecase}/{scopes}/{key}",
		"/v1/objects:multipart/testing/_/k":     "/v1/objects:multipart/{usecase}/{scopes}/{key}",
		"/v1/objects:multipart:parts/t/_/k":     "/v1/objects:multipart:parts/{usecase}/{scopes}/{key}",
		"/v1/objects:multipart:complete/t/_/k":  "/v1/objects:multipart:complete/{usecase}/{scopes}/{key}",
		"/v1/objects:multipartx/testing/_/k":    "/v1/{other}",
		"/s/objectstore/testing/org=42/k?sig=x": "/",
	} {
		if got := route(path); got != want {
			t.Errorf("route(%q) = %q, want %q", path, got, want)
		}
	}
}
