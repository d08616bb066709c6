package service

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Expiration header values.
const (
	ExpirationManual = "manual"
	expirationTTL    = "ttl:"
	expirationTTI    = "tti:"
)

// MaxExpiry bounds a time-to-live or time-to-idle (100 years).
const MaxExpiry = 100 * 365 * 24 * time.Hour

var durationUnits = map[string]time.Duration{
	"nsec": time.Nanosecond, "ns": time.Nanosecond,
	"usec": time.Microsecond, "us": time.Microsecond, "µs": time.Microsecond,
	"msec": time.Millisecond, "ms": time.Millisecond,
	"seconds": time.Second, "second": time.Second, "secs": time.Second, "sec": time.Second, "s": time.Second,
	"minutes": time.Minute, "minute": time.Minute, "mins": time.Minute, "min": time.Minute, "m": time.Minute,
	"hours": time.Hour, "hour": time.Hour, "hrs": time.Hour, "hr": time.Hour, "h": time.Hour,
	"days": 24 * time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
	"weeks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"months": 2630016 * time.Second, "month": 2630016 * time.Second, "M": 2630016 * time.Second,
	"years": 31557600 * time.Second, "year": 31557600 * time.Second, "y": 31557600 * time.Second,
}

// ParseDuration parses a duration as objectstore's clients write it
// (humantime): number-unit pairs, optionally separated by spaces, such as
// "1 days", "30m", "3600 seconds", "1d 2h 3m 4s" or "1h30m". Units are
// ns, us, ms, s, m, h, d, w, M (30.44 days), y (365.25 days) and their long
// forms (seconds, minutes, hours, days, …). The result is at most
// MaxExpiry; anything else is an error, never a panic.
func ParseDuration(s string) (time.Duration, error) {
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if len(rest) > 256 {
		return 0, fmt.Errorf("duration longer than 256 characters")
	}
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q: want a number at %q", clip(s), clip(rest))
		}
		var n uint64
		for _, c := range rest[:i] {
			if n > (math.MaxUint64-9)/10 {
				return 0, fmt.Errorf("duration %q is too long", clip(s))
			}
			n = n*10 + uint64(c-'0')
		}
		rest = strings.TrimLeft(rest[i:], " ")
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9') && rest[j] != ' ' {
			j++
		}
		unit, ok := durationUnits[rest[:j]]
		if !ok {
			return 0, fmt.Errorf("duration %q: unknown unit %q", clip(s), clip(rest[:j]))
		}
		rest = strings.TrimLeft(rest[j:], " ")
		if n > uint64(MaxExpiry/unit) {
			return 0, fmt.Errorf("duration %q is longer than %d years", clip(s), MaxExpiry/(365*24*time.Hour))
		}
		total += time.Duration(n) * unit
		if total > MaxExpiry {
			return 0, fmt.Errorf("duration %q is longer than %d years", clip(s), MaxExpiry/(365*24*time.Hour))
		}
	}
	return total, nil
}

// FormatDuration writes d as objectstore's clients read it back: days,
// hours, minutes and seconds, zero components left out ("1d 2h 30s"),
// "0s" for zero; sub-second remainders are dropped.
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	secs := int64(d / time.Second)
	var parts []string
	for _, u := range []struct {
		n    int64
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if v := secs / u.n; v > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", v, u.unit))
			secs -= v * u.n
		}
	}
	return strings.Join(parts, " ")
}

// Expiration is an object's expiration policy.
type Expiration struct {
	// TTL: expires this long after creation. TTI: this long after the last
	// read. Both zero: manual (never).
	TTL, TTI time.Duration
}

// ParseExpiration parses an x-sn-expiration value: "manual", "ttl:<duration>"
// or "tti:<duration>". Durations are rounded up to whole seconds, the
// precision the header is written back with, and zero is taken as one
// second: objectstore's Python client writes any duration under a second as
// "0s".
func ParseExpiration(v string) (Expiration, error) {
	v = strings.TrimSpace(v)
	var e Expiration
	var field *time.Duration
	switch {
	case v == ExpirationManual:
		return e, nil
	case strings.HasPrefix(v, expirationTTL):
		v, field = v[len(expirationTTL):], &e.TTL
	case strings.HasPrefix(v, expirationTTI):
		v, field = v[len(expirationTTI):], &e.TTI
	default:
		return e, fmt.Errorf("expiration %q: want manual, ttl:<duration> or tti:<duration>", clip(v))
	}
	d, err := ParseDuration(v)
	if err != nil {
		return Expiration{}, fmt.Errorf("expiration: %w", err)
	}
	*field = max(ceilSecond(d), time.Second)
	return e, nil
}

// String is the header form.
func (e Expiration) String() string {
	switch {
	case e.TTI > 0:
		return expirationTTI + FormatDuration(e.TTI)
	case e.TTL > 0:
		return expirationTTL + FormatDuration(e.TTL)
	}
	return ExpirationManual
}

func ceilSecond(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}
