package ccsns_test

import (
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/pypeer"
)

// What AWS's Python SNS extended client publishes reaches a raw-delivery
// SQS queue as its pointer, and ccsqs reads it.
func TestPythonSNSExtendedClient(t *testing.T) {
	p := newPeerTopic(t, "from-python")
	pypeer.Run(t, ctxT(t), p.env, "testdata/sns_peer.py")

	got := p.fromPeer(t)
	if got["python-big"] != strings.Repeat("s", 300000) || got["python-small"] != "small via s3" {
		t.Fatalf("got %d bytes and %q", len(got["python-big"]), got["python-small"])
	}
}
