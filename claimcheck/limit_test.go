package claimcheck_test

import (
	"strings"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash/memstash"
)

// ForLimit: only a checker offloading by size may claim-check for a
// transport's own cap, and only a message the producer left to the policy
// that is not marked already. MinReference is the shortest reference body
// of the checker's contract.
func TestForLimit(t *testing.T) {
	auto := newChecker(t, newEngine(t, memstash.New()))
	for name, c := range map[string]struct {
		c    *claimcheck.Checker
		h    claimcheck.MapHeaders
		want bool
	}{
		"auto":            {auto, claimcheck.MapHeaders{"app": "v"}, true},
		"never":           {newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMode(claimcheck.Never)), nil, false},
		"always":          {newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMode(claimcheck.Always)), nil, false},
		"override never":  {auto, claimcheck.MapHeaders{claimcheck.HeaderOffload: claimcheck.OffloadNever}, false},
		"override always": {auto, claimcheck.MapHeaders{claimcheck.HeaderOffload: claimcheck.OffloadAlways}, false},
		"claim-checked":   {auto, claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "5"}, false},
		"an AWS pointer":  {auto, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5"}, false},
	} {
		h := c.h
		if h == nil {
			h = claimcheck.MapHeaders{}
		}
		if got := c.c.ForLimit(h); got != c.want {
			t.Errorf("%s: ForLimit = %v, want %v", name, got, c.want)
		}
	}
	if n := auto.MinReference(); n != len("a://b/c.")+64 {
		t.Errorf("MinReference = %d, want the shortest address, %d", n, len("a://b/c.")+64)
	}
	aws, _ := awsChecker(t)
	shortest := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "aaa", Key: "a.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
	if n := aws.MinReference(); n != len(shortest) {
		t.Errorf("MinReference under the AWS contract = %d, want %d", n, len(shortest))
	}
}

// Stores: whether Offload would write a stash for the message, which a
// transport asks before it refuses a reference too big for its cap.
// Rewritten names the headers Offload removes or sets.
func TestStores(t *testing.T) {
	auto := newChecker(t, newEngine(t, memstash.New()))
	aws, _ := awsChecker(t)
	big := make([]byte, 1<<20)
	small := []byte("small")
	digest := strings.Repeat("0", 64)
	pointer := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bkt", Key: "k." + digest})
	for name, c := range map[string]struct {
		c    *claimcheck.Checker
		body []byte
		h    claimcheck.MapHeaders
		want bool
	}{
		"over the threshold":  {auto, big, claimcheck.MapHeaders{}, true},
		"under the threshold": {auto, small, claimcheck.MapHeaders{}, false},
		"override always":     {auto, small, claimcheck.MapHeaders{claimcheck.HeaderOffload: claimcheck.OffloadAlways}, true},
		"override never":      {auto, big, claimcheck.MapHeaders{claimcheck.HeaderOffload: claimcheck.OffloadNever}, false},
		"a bad override":      {auto, big, claimcheck.MapHeaders{claimcheck.HeaderOffload: "sometimes"}, false},
		"claim-checked":       {auto, []byte("mem://default/a." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "5"}, false},
		"AWS, over":           {aws, big, claimcheck.MapHeaders{}, true},
		"AWS, a pointer":      {aws, pointer, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5", claimcheck.HeaderOffload: claimcheck.OffloadAlways}, false},
	} {
		if got := c.c.Stores(c.body, c.h); got != c.want {
			t.Errorf("%s: Stores = %v, want %v", name, got, c.want)
		}
	}
	for _, k := range []string{claimcheck.HeaderOffload, claimcheck.HeaderVersion, claimcheck.HeaderSize, claimcheck.AttrExtendedPayloadSize} {
		if !claimcheck.Rewritten(k) {
			t.Errorf("Rewritten(%q) = false", k)
		}
	}
	for _, k := range []string{"app", "Claimstash-Version", "traceparent", ""} {
		if claimcheck.Rewritten(k) {
			t.Errorf("Rewritten(%q) = true", k)
		}
	}
}
