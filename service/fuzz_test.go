package service

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// FuzzObjectPath: the path parser never panics, what it accepts round-trips,
// maps to a valid driver key in one store, and two different paths never
// map to the same storage.
func FuzzObjectPath(f *testing.F) {
	for _, s := range [][2]string{
		{"testing/org=42;project=7/foo/bar", "testing/project=7;org=42/foo/bar"},
		{"testing/_/k", "testing/_/_os.2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"},
		{"a/b=1/x.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a/osh=1/k"},
		{"testing/org=(a)$!+'/%2F..%2Fx", "testing/org=1%3Bp=2/k"},
		{"os--x/_/k", "UPPER/_/k"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, errA := parseObjectPath(a, 0)
		pb, errB := parseObjectPath(b, 0)
		for _, p := range []struct {
			p   ObjectPath
			err error
		}{{pa, errA}, {pb, errB}} {
			if p.err != nil {
				continue
			}
			sc, err := ParseScopes(p.p.ScopeString(), 0)
			if err != nil || !reflect.DeepEqual(sc, p.p.Scopes) {
				t.Fatalf("scopes %q do not round-trip: %v %v", p.p.ScopeString(), sc, err)
			}
			if p.p.Key == "" {
				continue
			}
			ns, key := storageNamespace(p.p.Usecase), storageKey(p.p.Scopes, p.p.Key)
			addr, err := stash.ParseAddress("mem://" + ns + "/" + key)
			if err != nil || addr.Namespace != ns || addr.Key() != key {
				t.Fatalf("%+v maps to %s/%s, not a valid driver key: %v", p.p, ns, key, err)
			}
		}
		if errA != nil || errB != nil || pa.Key == "" || pb.Key == "" {
			return
		}
		same := pa.Usecase == pb.Usecase && pa.ScopeString() == pb.ScopeString() && pa.Key == pb.Key
		stored := storageNamespace(pa.Usecase) == storageNamespace(pb.Usecase) &&
			storageKey(pa.Scopes, pa.Key) == storageKey(pb.Scopes, pb.Key)
		if same != stored {
			t.Fatalf("%+v and %+v: same object %v, same storage %v", pa, pb, same, stored)
		}
	})
}

// FuzzDuration: the duration parser never panics, stays within MaxExpiry,
// and what FormatDuration writes parses back to the same whole seconds.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"1 days", "30m", "3600 seconds", "1d 2h 3m 4s", "1h30m", "400d 1m 30s", "0s", "99999999999999999999y", "1 2", "m", "5 µs", "ttl:1d", "ttl:5ms", "tti:1s", "manual"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := ParseExpiration(s); err == nil {
			manual := strings.TrimSpace(s) == ExpirationManual
			if manual != (e.TTL == 0 && e.TTI == 0) || e.TTL < 0 || e.TTI < 0 {
				t.Fatalf("expiration %q parsed to %+v", s, e)
			}
			if back, err := ParseExpiration(e.String()); err != nil || back != e {
				t.Fatalf("expiration %q -> %+v -> %q -> %+v, %v", s, e, e.String(), back, err)
			}
		}
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 || d > MaxExpiry {
			t.Fatalf("%q parsed to %v", s, d)
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d.Truncate(time.Second) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, d, FormatDuration(d), back, err)
		}
	})
}

// FuzzParseRange: the Range parser never panics, and a satisfiable range
// it accepts lies inside the object and is not empty.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-4", "BYTES=-5", "bytes=6-", "bytes=0-1,3-4", "bytes=5-1", "bytes=-0", "items=1-2", "bytes=99999999999999999999-", "bytes=-9223372036854775807"} {
		f.Add(s, int64(11))
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		start, n, ok, satisfiable, err := parseRange(h, size)
		if err != nil && (ok || satisfiable) {
			t.Fatalf("parseRange(%q, %d): an error and a range", h, size)
		}
		if ok && satisfiable && (start < 0 || n <= 0 || start+n > size || start+n < start) {
			t.Fatalf("parseRange(%q, %d) = %d+%d: outside the object", h, size, start, n)
		}
	})
}
