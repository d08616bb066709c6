package links_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
)

// TestTrustedReadsEveryExpiry: a presigned link whose own expiry has passed
// is ErrExpired before it is fetched, whichever way it is signed:
// signature version 4 (X-Amz-Date plus X-Amz-Expires) and version 2
// (Expires, in Unix seconds, boto3's default, as kstash's links are); and a
// lifetime too large for a duration reads as far off, not as long past.
func TestTrustedReadsEveryExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f, err := links.NewFetcher(links.TrustOrigins("http://s3.test"), links.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	path := "http://s3.test/bucket/orders." + strings.Repeat("0", 64)
	frag := "#" + url.Values{"stash": {"s3://bucket/orders." + strings.Repeat("0", 64)}}.Encode()
	v4 := func(date time.Time, secs string) string {
		return fmt.Sprintf("%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=%s&X-Amz-Expires=%s&X-Amz-Signature=abc", path, date.Format("20060102T150405Z"), secs)
	}
	v2 := func(exp time.Time) string {
		return fmt.Sprintf("%s?AWSAccessKeyId=AKID&Signature=abc%%3D&Expires=%d", path, exp.Unix())
	}
	for _, tc := range []struct {
		name, link string
		expired    bool
	}{
		{"v4 live", v4(now.Add(-time.Minute), "3600"), false},
		{"v4 expired", v4(now.Add(-2*time.Hour), "3600"), true},
		{"v4 lifetime beyond any duration", v4(now.Add(-time.Minute), "9300000000"), false},
		{"v2 live", v2(now.Add(time.Hour)), false},
		{"v2 expired", v2(now.Add(-time.Second)), true},
	} {
		l, err := stash.ParseLink(tc.link + frag)
		if err != nil {
			t.Fatalf("%s: ParseLink: %v", tc.name, err)
		}
		err = f.Trusted(l)
		if got := errors.Is(err, stash.ErrExpired); got != tc.expired {
			t.Errorf("%s: Trusted = %v; want expired %v", tc.name, err, tc.expired)
		}
	}
}
