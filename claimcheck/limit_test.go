package claimcheck_test

import (
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
