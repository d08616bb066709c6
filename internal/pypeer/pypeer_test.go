package pypeer

import (
	"context"
	"strings"
	"testing"
)

// TestPeersImport checks that every pinned peer imports in the virtualenv.
func TestPeersImport(t *testing.T) {
	out := Run(t, context.Background(), nil, "-c",
		"import objectstore_client, msgpack, boto3, pytest, nats; print('ok')")
	if strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("got %q", out)
	}
}
