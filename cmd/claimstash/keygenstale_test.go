package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/osauth"
)

// TestKeygenStalePermissions: a permissions file left from an earlier key
// of the same name would cap a new key without --max-permissions without a
// word; keygen refuses and writes nothing.
func TestKeygenStalePermissions(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "relay"+osauth.PermissionsSuffix)
	if err := os.WriteFile(stale, []byte("object.read\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := cli(t, nil, "keygen", "--kind", "objectstore", "--dir", dir, "--kid", "relay")
	if code != exitUsage || !strings.Contains(errs, "relay.permissions") {
		t.Fatalf("keygen beside a stale permissions file: exit %d, %s", code, errs)
	}
	noGoIdentifiers(t, "keygen", errs)
	for _, name := range []string{"relay.key", "relay.pub"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s written: %v", name, err)
		}
	}
	// Removed, the key is made, uncapped.
	if err := os.Remove(stale); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, nil, "keygen", "--kind", "objectstore", "--dir", dir, "--kid", "relay")
	keys, err := osauth.OpenKeyDir(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := keys.PublicKey("relay"); !ok || len(pub.MaxPermissions) != 0 {
		t.Fatalf("new key: %+v %v, want it uncapped", pub, ok)
	}
}
