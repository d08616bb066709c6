package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/testproc"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// rustPeer returns the test peer built by `make tools` from testdata/rust
// (Sentry's Rust objectstore client), or skips t without it. Under CI=true a
// missing peer fails t, unless the machine has no working Rust toolchain to
// build it with.
func rustPeer(t *testing.T) string {
	t.Helper()
	path, _ := testproc.ToolsPath("bin", "objectstore-rs-peer")
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		return path
	}
	haveCargo := exec.Command("cargo", "--version").Run() == nil
	if os.Getenv("CI") == "true" && haveCargo {
		t.Fatalf("rust peer: %s missing under CI=true (run make tools)", path)
	}
	t.Skipf("rust peer not built (run make tools; it needs cargo): %s", path)
	return ""
}

// TestOfficialRustClient drives the server with objectstore's own Rust
// client (testdata/rust, objectstore-client from crates.io, unchanged), over
// a loopback socket: put, get, head and delete; a server-made key; scopes;
// TTL, TTI and the expiry extension; metadata; zstd both ways; batch; a
// token minted by osauth.Signer, an expired one, one for another scope, one
// from the Rust client's own generator with a key written by
// osauth.GenerateKey; presigned URLs signed with objectstore's own canonical
// form (objectstore-types), for a key that needs escaping, fetched with no
// token, and refused when edited or too long-lived; resumable uploads
// declined (501), as the client expects, and its plain put after. Then a Go
// engine reads what the Rust client stored, and the Rust client what a Go
// engine stored.
func TestOfficialRustClient(t *testing.T) {
	if testing.Short() {
		t.Skip("the rust peer takes a few seconds; skipped with -short")
	}
	peer := rustPeer(t)
	ps := newPeerServer(t)
	ts, files, tok, expiredTok := ps.ts, ps.files, ps.token, ps.expiredTok
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	e := ps.engine
	in := []stash.CreateOption{stash.InNamespace("testing"), stash.InScopes(stash.Scope{Key: "org", Value: "42"}, stash.Scope{Key: "project", Value: "7"})}
	fromGo := bytes.Repeat([]byte("written by a go engine for rust "), 1000)
	made, err := e.Create(ctx, "from-go", fromGo, in...)
	if err != nil {
		t.Fatal(err)
	}
	if made.Encoding != driver.EncodingZstd {
		t.Fatalf("the Go stash is stored %q, want zstd for the round trip", made.Encoding)
	}
	// What the peer stores (rust_payload and rust_raw_payload in main.rs),
	// under content-addressed keys.
	fromRust := bytes.Repeat([]byte("written by rust "), 500)
	rawFromRust := bytes.Repeat([]byte("stored raw by rust "), 300)
	key := func(name string, p []byte) string {
		sum := sha256.Sum256(p)
		return name + "." + hex.EncodeToString(sum[:])
	}
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, peer)
	cmd.Env = clitool.Environ([]string{
		"OS_URL=" + ts.URL, "OS_KID=" + files.Kid, "OS_KEY=" + files.Private,
		"OS_GO_TOKEN=" + tok, "OS_EXPIRED_TOKEN=" + expiredTok,
		"OS_GO_STASH_KEY=" + made.Address.Name + "." + made.Address.Digest,
		"OS_RS_KEY=" + key("rs-made", fromRust), "OS_RS_RAW_KEY=" + key("rs-raw", rawFromRust),
		"OS_OUT=" + out,
	})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rust peer: %v\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("%s", stdout.Bytes())
	if n := strings.Count(stdout.String(), "ok "); n != 13 {
		t.Fatalf("rust peer passed %d checks, want 13", n)
	}

	// The Go stash, as the Rust client read it (decompressed).
	got, err := os.ReadFile(filepath.Join(out, "go-stash"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromGo) {
		t.Fatalf("the Rust client read %d bytes of the Go stash, want its %d", len(got), len(fromGo))
	}
	// And what the Rust client stored is a stash the Go engine retrieves:
	// zstd-compressed by the client, and stored raw.
	for _, c := range []struct {
		key  string
		data []byte
		enc  driver.Encoding
	}{
		{key("rs-made", fromRust), fromRust, driver.EncodingZstd},
		{key("rs-raw", rawFromRust), rawFromRust, driver.EncodingIdentity},
	} {
		addr := "objectstore://testing/org=42/project=7/" + c.key
		st, err := e.Retrieve(ctx, addr)
		if err != nil {
			t.Fatalf("Retrieve %s: %v", addr, err)
		}
		if !bytes.Equal(st.Data, c.data) || st.Encoding != c.enc {
			t.Fatalf("Retrieve of the Rust object %s: %d bytes, encoding %q; want %d, %q", c.key, len(st.Data), st.Encoding, len(c.data), c.enc)
		}
	}
}
