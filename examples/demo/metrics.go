package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/otelstash/otelprom"
)

// telemetry is the OpenTelemetry instrumentation of the demo: metrics
// collected for Prometheus, as `claimstash serve` would serve them at
// /metrics.
func telemetry() (*otelprom.Exporter, *otelstash.Instrumentation, error) {
	exp, err := otelprom.New()
	if err != nil {
		return nil, nil, err
	}
	inst, err := exp.Instrumentation()
	if err != nil {
		return nil, nil, err
	}
	return exp, inst, nil
}

var scopeLabels = regexp.MustCompile(`,?otel_scope_[a-z_]+="[^"]*"`)

// printMetrics prints the counters the exporter serves (the claimstash_*
// series that are not histogram buckets), without the scope labels, and
// returns the message counts by outcome.
func printMetrics(out io.Writer, exp *otelprom.Exporter) (map[string]string, error) {
	rec := httptest.NewRecorder()
	exp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", rec.Code)
	}
	counts := map[string]string{}
	fmt.Fprintln(out, "  OpenTelemetry metrics collected (served at /metrics by claimstash serve):")
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "claimstash_") || strings.Contains(line, "_bucket{") || strings.Contains(line, "_sum{") {
			continue
		}
		line = strings.Replace(scopeLabels.ReplaceAllString(line, ""), "{,", "{", 1)
		fmt.Fprintln(out, "    "+line)
		if name, rest, ok := strings.Cut(line, "{"); ok && name == "claimstash_messages_total" {
			if i := strings.Index(rest, `claimstash_outcome="`); i >= 0 {
				o, _, _ := strings.Cut(rest[i+len(`claimstash_outcome="`):], `"`)
				_, v, _ := strings.Cut(rest, "} ")
				counts[o] = v
			}
		}
	}
	return counts, sc.Err()
}
