package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// TestRunKfake runs the example as a fresh machine would: no broker given,
// so against an in-process kfake.
func TestRunKfake(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-size", "3145728"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"in-process kfake", "sent 3145728 bytes", "received 3145728 bytes", `content-type "application/octet-stream"`, "offloaded 1, rehydrated 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
