package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// TestOfficialPythonClient drives the server with objectstore's own Python
// client (testdata/python), over a loopback socket, with a key pair written
// by osauth.GenerateKey and a token minted by osauth.Signer.
func TestOfficialPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("python peers take a few seconds; skipped with -short")
	}
	pypeer.Python(t) // skip (fail under CI=true) without the virtualenv
	ps := newPeerServer(t)
	ts, files, tok, expiredTok := ps.ts, ps.files, ps.token, ps.expiredTok
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A stash made by a Go engine through the objectstore backend, zstd
	// compressed, for the Python client to read.
	e := ps.engine
	stashScopes := []stash.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "7"}}
	fromGo := bytes.Repeat([]byte("written by a go engine "), 1000)
	made, err := e.Create(ctx, "from-go", fromGo, stash.InNamespace("testing"), stash.InScopes(stashScopes...),
		stash.Metadata(map[string]string{"source": "go"}), stash.Origin("go-engine"))
	if err != nil {
		t.Fatal(err)
	}
	if made.Encoding != driver.EncodingZstd {
		t.Fatalf("the Go stash is stored %q, want zstd for the round trip", made.Encoding)
	}
	sum := sha256.Sum256(fromGo)

	out := pypeer.Run(t, ctx, []string{
		"OS_URL=" + ts.URL, "OS_KID=" + files.Kid, "OS_KEY=" + files.Private,
		"OS_GO_TOKEN=" + tok, "OS_EXPIRED_TOKEN=" + expiredTok,
		"OS_GO_STASH_KEY=" + made.Address.Name + "." + made.Address.Digest, "OS_GO_STASH_SHA256=" + hex.EncodeToString(sum[:]),
	}, "-m", "pytest", "-q", "-p", "no:cacheprovider", filepath.Join("testdata", "python"))
	t.Logf("%s", out)

	// And the other way: what the Python client stored under a
	// content-addressed key is a stash the Go engine retrieves.
	fromPy := bytes.Repeat([]byte("written by python "), 500)
	pySum := sha256.Sum256(fromPy)
	addr := "objectstore://testing/org=42/project=7/py-made." + hex.EncodeToString(pySum[:])
	got, err := e.Retrieve(ctx, addr)
	if err != nil {
		t.Fatalf("Retrieve %s: %v", addr, err)
	}
	if !bytes.Equal(got.Data, fromPy) || got.Metadata["source"] != "python" {
		t.Fatalf("Retrieve of the Python object: %d bytes, metadata %v", len(got.Data), got.Metadata)
	}
	zFromPy := bytes.Repeat([]byte("compressed by python "), 500)
	zSum := sha256.Sum256(zFromPy)
	addr = "objectstore://testing/org=42/project=7/py-zstd." + hex.EncodeToString(zSum[:])
	got, err = e.Retrieve(ctx, addr)
	if err != nil {
		t.Fatalf("Retrieve %s (zstd, compressed by the Python client): %v", addr, err)
	}
	if !bytes.Equal(got.Data, zFromPy) || got.Encoding != driver.EncodingZstd {
		t.Fatalf("Retrieve of the Python zstd object: %d bytes, encoding %q", len(got.Data), got.Encoding)
	}
}
