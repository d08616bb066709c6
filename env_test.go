package claimstash_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/claimstash/claimstash"
	"github.com/claimstash/claimstash/stash"
)

// TestSchemes: the standard backends are the command line's, so a backend
// URL copied from it opens here too.
func TestSchemes(t *testing.T) {
	if got := strings.Join(stash.Schemes(), ","); got != "file,mem,nats,objectstore,s3" {
		t.Errorf("schemes %s, want file,mem,nats,objectstore,s3", got)
	}
}

// TestOpenEnvErrors: an error names the variable that was set, and no Go
// identifier.
func TestOpenEnvErrors(t *testing.T) {
	ctx := context.Background()
	key := "k:" + strings.Repeat("A", 43)
	goIdent := regexp.MustCompile(`\b(With[A-Z]\w*|New[A-Z]\w*|Parse[A-Z]\w*|Trust[A-Z]\w*|stash\.[A-Z]\w*)`)
	for _, c := range []struct {
		env  map[string]string
		name string // what the message must name
	}{
		{map[string]string{}, claimstash.EnvBackend},
		{map[string]string{claimstash.EnvBackend: "~/stashes"}, claimstash.EnvBackend},
		{map[string]string{claimstash.EnvBackend: "ftp://x"}, claimstash.EnvBackend},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvNamespace: "Not Valid"}, claimstash.EnvNamespace},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvMaxSize: "1.5B"}, claimstash.EnvMaxSize},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvMaxSize: "lots"}, claimstash.EnvMaxSize},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: "k:c2hvcnQ"}, claimstash.EnvLinkKeys},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKey: "k:c2hvcnQ"}, claimstash.EnvLinkKey},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: key + "," + key}, claimstash.EnvLinkKeys},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: key, claimstash.EnvShareURL: "ftp://x/"}, claimstash.EnvShareURL},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvShareURL: "ftp://x/"}, claimstash.EnvShareURL},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvTrustedOrigins: "https://a, https://h/path"}, claimstash.EnvTrustedOrigins},
	} {
		_, err := claimstash.EngineFromEnv(ctx, claimstash.WithGetenv(func(k string) string { return c.env[k] }))
		if err == nil {
			t.Errorf("%v: EngineFromEnv succeeded", c.env)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "claimstash: ") || !strings.Contains(msg, c.name) {
			t.Errorf("%v: %q: want it to start claimstash: and name %s", c.env, msg, c.name)
		}
		if id := goIdent.FindString(msg); id != "" {
			t.Errorf("%v: %q names %s", c.env, msg, id)
		}
		if strings.Contains(msg, strings.Repeat("A", 43)) {
			t.Errorf("%v: %q shows a secret", c.env, msg)
		}
	}
}

// TestOpenEnvLenient: the spellings the command line always took, a bare
// directory and a size with a unit, build the engine they say.
func TestOpenEnvLenient(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{claimstash.EnvBackend: dir, claimstash.EnvMaxSize: "1KiB"}
	e, err := claimstash.EngineFromEnv(ctx, claimstash.WithGetenv(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.MaxSize() != 1024 {
		t.Errorf("max size %d, want 1024", e.MaxSize())
	}
	s, err := e.Create(ctx, "x", make([]byte, 1024), stash.NoInline())
	if err != nil {
		t.Fatal(err)
	}
	if s.Address.Scheme != "file" {
		t.Errorf("stored at %s, want the file backend", s.Address)
	}
	if _, err := os.Stat(filepath.Join(dir, "default")); err != nil {
		t.Errorf("the stash is not under %s: %v", dir, err)
	}
	if _, err := e.Create(ctx, "y", make([]byte, 1025), stash.NoInline()); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("1025 bytes over 1KiB: %v, want ErrTooLarge", err)
	}
}
