package otelprom_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash/otelprom"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Serve the claim-check metrics at /metrics, as claimstash serve can.
func Example() {
	exp, err := otelprom.New()
	if err != nil {
		panic(err)
	}
	defer exp.Shutdown(context.Background())
	inst, err := exp.Instrumentation()
	if err != nil {
		panic(err)
	}
	engine, err := stash.New(stash.WithBackend(memstash.New()), inst.EngineOption())
	if err != nil {
		panic(err)
	}
	checker, err := claimcheck.New(engine, inst.CheckerOption())
	if err != nil {
		panic(err)
	}
	for _, n := range []int{10, 1 << 20} {
		if _, _, err := checker.Offload(context.Background(), "orders", make([]byte, n), claimcheck.MapHeaders{}); err != nil {
			panic(err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", exp)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var lines []string
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "claimstash_messages_total{") {
			name, rest, _ := strings.Cut(line, "{")
			labels, value, _ := strings.Cut(rest, "} ")
			for _, l := range strings.Split(labels, ",") {
				if strings.HasPrefix(l, "claimstash_outcome=") {
					lines = append(lines, name+" "+l+" "+value)
				}
			}
		}
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// claimstash_messages_total claimstash_outcome="offloaded" 1
	// claimstash_messages_total claimstash_outcome="passed" 1
}
