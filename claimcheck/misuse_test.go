package claimcheck_test

import (
	"context"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash/memstash"
)

// A Checker that New did not make (zero or nil), nil headers and nil options are
// mistakes in the calling code; each gets an error that says what is wrong,
// never a panic.
func TestMisuseIsAnError(t *testing.T) {
	ctx := context.Background()
	var zero claimcheck.Checker
	big := make([]byte, 1<<20)
	if _, _, err := zero.Offload(ctx, "t", big, claimcheck.MapHeaders{}); err == nil || !strings.Contains(err.Error(), "no stash engine") {
		t.Errorf("Offload on a zero Checker: %v", err)
	}
	h := claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "1"}
	if _, _, err := zero.Rehydrate(ctx, "t", []byte("mem://default/x."+strings.Repeat("0", 64)), h); err == nil || !strings.Contains(err.Error(), "no stash engine") {
		t.Errorf("Rehydrate on a zero Checker: %v", err)
	}
	body := []byte("x")
	if _, d, err := zero.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: "t", Body: &body, Headers: h}); err == nil || d != claimcheck.Redeliver {
		t.Errorf("RehydrateInPlace on a zero Checker: %v, %v; want Redeliver and an error", d, err)
	}

	zero.Plain(ctx, "t", 1, h) // observes nothing, and does not panic
	if err := zero.Acked(ctx, "mem://default/x."+strings.Repeat("0", 64)); err != nil {
		t.Errorf("Acked on a zero Checker: %v", err)
	}
	var none *claimcheck.Checker
	if _, _, err := none.Offload(ctx, "t", big, claimcheck.MapHeaders{}); err == nil || !strings.Contains(err.Error(), "no stash engine") {
		t.Errorf("Offload on a nil Checker: %v", err)
	}
	if _, _, err := none.Rehydrate(ctx, "t", []byte("mem://default/x."+strings.Repeat("0", 64)), h); err == nil || !strings.Contains(err.Error(), "no stash engine") {
		t.Errorf("Rehydrate on a nil Checker: %v", err)
	}
	if _, d, err := none.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: "t", Body: &body, Headers: h}); err == nil || d != claimcheck.Redeliver {
		t.Errorf("RehydrateInPlace on a nil Checker: %v, %v; want Redeliver and an error", d, err)
	}
	if err := none.Acked(ctx, "mem://default/x."+strings.Repeat("0", 64)); err != nil {
		t.Errorf("Acked on a nil Checker: %v", err)
	}

	c := newChecker(t, newEngine(t, memstash.New(), nil), nil, claimcheck.WithThreshold(1024), nil)
	if _, _, err := c.Offload(ctx, "t", big, nil); err == nil || !strings.Contains(err.Error(), "nil headers") {
		t.Errorf("Offload with nil headers: %v", err)
	}
	if _, _, err := c.Rehydrate(ctx, "t", body, nil); err == nil || !strings.Contains(err.Error(), "nil headers") {
		t.Errorf("Rehydrate with nil headers: %v", err)
	}
	if c.Threshold() != 1024 {
		t.Errorf("the options beside the nil ones were not applied: threshold %d", c.Threshold())
	}
}
