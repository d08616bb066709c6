package otelprom_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash/otelprom"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

func TestMetricsEndpoint(t *testing.T) {
	exp, err := otelprom.New()
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	inst, err := exp.Instrumentation()
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(memstash.New()), inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	c, err := claimcheck.New(e, claimcheck.WithThreshold(4<<10), inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []int{10, 20, 8 << 10} {
		if _, _, err := c.Offload(ctx, "orders", make([]byte, n), claimcheck.MapHeaders{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(exp)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`claimstash_messages_total{claimstash_outcome="passed",messaging_destination_name="orders",messaging_operation_name="offload"`,
		`claimstash_offload_payload_bytes_total{`,
		`claimstash_compression_ratio_bucket{`,
		`claimstash_stash_duration_seconds_bucket{`,
		`claimstash_backend_duration_seconds_bucket{claimstash_backend_call="put"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "claimstash_messages_total{") && strings.Contains(line, `"passed"`) && !strings.HasSuffix(line, " 2") {
			t.Errorf("passed count: %s, want 2", line)
		}
		if strings.HasPrefix(line, "claimstash_offload_payload_bytes_total{") && !strings.HasSuffix(line, " 8192") {
			t.Errorf("offloaded bytes: %s, want 8192", line)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
