package service_test

import (
	"testing"
	"time"

	"github.com/claimstash/claimstash/service"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1 days": 24 * time.Hour, "30m": 30 * time.Minute, "3600 seconds": time.Hour,
		"1d 2h 3m 4s": 26*time.Hour + 3*time.Minute + 4*time.Second, "1h30m": 90 * time.Minute,
		"2 weeks": 14 * 24 * time.Hour, "1 year": 31557600 * time.Second, "500ms": 500 * time.Millisecond,
		"  7s ": 7 * time.Second,
	} {
		got, err := service.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "d", "1 fortnight", "1.5h", "-1s", "1d2", "1000 years", "99999999999999999999999s"} {
		if d, err := service.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, d)
		}
	}
	if got := service.FormatDuration(26*time.Hour + 30*time.Second); got != "1d 2h 30s" {
		t.Errorf("FormatDuration = %q", got)
	}
	e, err := service.ParseExpiration("ttl:1500ms")
	if err != nil || e.TTL != 2*time.Second || e.String() != "ttl:2s" {
		t.Errorf("ParseExpiration(ttl:1500ms) = %+v %q, %v; want 2s", e, e.String(), err)
	}
	// objectstore's Python client writes a duration under a second as
	// "0s": taken as one second, the least the header states.
	for in, want := range map[string]service.Expiration{"ttl:0s": {TTL: time.Second}, "tti:0s": {TTI: time.Second}, "ttl:0d 0h": {TTL: time.Second}} {
		if e, err := service.ParseExpiration(in); err != nil || e != want {
			t.Errorf("ParseExpiration(%q) = %+v, %v; want %+v", in, e, err, want)
		}
	}
	for _, in := range []string{"ttl:-1s", "tti:", "ttl:", "forever", "ttl:1 days extra"} {
		if _, err := service.ParseExpiration(in); err == nil {
			t.Errorf("ParseExpiration(%q) accepted", in)
		}
	}
}
