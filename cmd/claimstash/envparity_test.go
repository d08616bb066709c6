package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
)

// cliEngine builds the engine the command line builds, for a command that
// needs a backend, from the flags args and the environment env: the flags
// parsed by cobra, the variables bound by bindEnv, the engine opened by
// openEngine, as a run does.
func cliEngine(t *testing.T, env map[string]string, args ...string) (*engine, error) {
	t.Helper()
	a := newApp(strings.NewReader(""), io.Discard, io.Discard)
	a.getenv = func(k string) string { return env[k] }
	cmd, _, err := a.newRoot().Find([]string{"stat"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(args); err != nil {
		return nil, usageError{err}
	}
	a.cmd = cmd
	if err := bindEnv(cmd, a.getenv); err != nil {
		return nil, err
	}
	return a.openEngine(context.Background(), engineNeeds{backend: true})
}

// flagsOf is env written as the command line's flags: CLAIMSTASH_MAX_SIZE
// is --max-size, and CLAIMSTASH_LINK_KEY (the older name) --link-keys.
func flagsOf(env map[string]string) []string {
	var args []string
	for k, v := range env {
		name, ok := strings.CutPrefix(k, "CLAIMSTASH_")
		if !ok {
			continue
		}
		if name == "LINK_KEY" {
			name = "LINK_KEYS"
		}
		args = append(args, "--"+strings.ToLower(strings.ReplaceAll(name, "_", "-"))+"="+v)
	}
	return args
}

// TestEnvAndCLIAgree feeds the same settings to claimstash.EngineFromEnv (a
// service's environment), to the command line's variables and to its flags,
// and checks that the three build engines that behave alike (backends,
// namespace, size limit, the stashes they read, the links they sign and
// trust), or that all three refuse the settings, each naming the variable
// or the flag that was set. The forms that differed before one parser read
// them all are marked.
func TestEnvAndCLIAgree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	other := filepath.Join(filepath.Dir(dir), "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(dir)) // relative directories are read from here
	key := func(id string, b byte) string {
		return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
	}
	keys := key("k2", 2) + "," + key("k1", 1)
	// Links to probe each engine's trust with: one signed under a share
	// URL, one at an origin trusted by name only, one at neither.
	signer, err := links.NewHMAC("https://share.example/base/", mustKeys(t, keys)...)
	if err != nil {
		t.Fatal(err)
	}
	signed := signLink(t, signer)
	trustedOnly := signLink(t, mustHMAC(t, "https://trusted.example/", key("z", 9)))
	untrusted := signLink(t, mustHMAC(t, "https://evil.example/", key("k2", 2)))

	type want struct {
		schemes   string
		namespace string
		maxSize   int64
		dir       string // the file backend's directory, "" if none
		trusts    string // of signed, trustedOnly, untrusted: "stu" letters trusted
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want *want // nil: refused
		// refused: what each message must say besides the setting's
		// name, and the variable at fault when there are two besides
		// CLAIMSTASH_BACKEND.
		says, bad string
	}{
		{name: "file URL", env: map[string]string{"CLAIMSTASH_BACKEND": "file://" + dir},
			want: &want{schemes: "file", dir: dir}},
		{name: "bare directory (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": dir},
			want: &want{schemes: "file", dir: dir}},
		{name: "bare directory, uncleaned (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": " " + dir + "/../" + filepath.Base(dir) + "/ "},
			want: &want{schemes: "file", dir: dir}},
		{name: "directory and mem (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": dir + " , mem://"},
			want: &want{schemes: "file,mem", dir: dir}},
		{name: "mem and directory (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://," + other},
			want: &want{schemes: "mem,file"}},
		{name: "comma in a URL's parameters (differed)", env: map[string]string{
			"CLAIMSTASH_BACKEND": "s3://?region=eu-west-1&endpoint=http://127.0.0.1:1&buckets=a,b,mem://", "AWS_EC2_METADATA_DISABLED": "true"},
			want: &want{schemes: "s3,mem"}},
		{name: "relative directory (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": filepath.Base(dir)},
			want: &want{schemes: "file", dir: dir}},
		{name: "dot-relative directory (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "./" + filepath.Base(dir)},
			want: &want{schemes: "file", dir: dir}},
		{name: "relative after a URL (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://,./" + filepath.Base(other)},
			want: &want{schemes: "mem,file"}},
		{name: "zero size is the default (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "0"},
			want: &want{schemes: "mem"}},
		{name: "namespace, trimmed", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_NAMESPACE": " orders "},
			want: &want{schemes: "mem", namespace: "orders"}},
		{name: "size in bytes", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "1048576"},
			want: &want{schemes: "mem", maxSize: 1 << 20}},
		{name: "size in MiB (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "64MiB"},
			want: &want{schemes: "mem", maxSize: 64 << 20}},
		{name: "size in MB (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "10MB"},
			want: &want{schemes: "mem", maxSize: 10_000_000}},
		{name: "size with a space and a fraction (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "1.5 GiB"},
			want: &want{schemes: "mem", maxSize: 3 << 29}},
		{name: "link keys and share URL", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_LINK_KEYS": keys, "CLAIMSTASH_SHARE_URL": " https://share.example/base/ "},
			want: &want{schemes: "mem", trusts: "s"}},
		{name: "older link key variable", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_LINK_KEY": keys, "CLAIMSTASH_SHARE_URL": "https://share.example/base/"},
			want: &want{schemes: "mem", trusts: "s"}},
		{name: "trusted origins", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_TRUSTED_ORIGINS": " https://trusted.example, ,https://b.example:8443 "},
			want: &want{schemes: "mem", trusts: "t"}},
		{name: "everything", env: map[string]string{"CLAIMSTASH_BACKEND": dir + ",mem://", "CLAIMSTASH_NAMESPACE": "ops", "CLAIMSTASH_MAX_SIZE": "2KiB",
			"CLAIMSTASH_LINK_KEYS": keys, "CLAIMSTASH_SHARE_URL": "https://share.example/base/", "CLAIMSTASH_TRUSTED_ORIGINS": "https://trusted.example"},
			want: &want{schemes: "file,mem", namespace: "ops", maxSize: 2048, dir: dir, trusts: "st"}},

		{name: "no backend", env: map[string]string{"CLAIMSTASH_NAMESPACE": "ops"}, says: "no backend", bad: "CLAIMSTASH_BACKEND"},
		{name: "tilde", env: map[string]string{"CLAIMSTASH_BACKEND": "~/stashes"}, says: "no shell expanded"},
		{name: "unknown scheme", env: map[string]string{"CLAIMSTASH_BACKEND": "ftp://x"}, says: `"ftp"`},
		{name: "bad namespace", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_NAMESPACE": "Not Valid"}, says: "namespace"},
		{name: "size with a comma (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "1,5MB"}, says: "commas"},
		{name: "fraction of a byte (differed)", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "1.1KiB"}, says: "whole number"},
		{name: "negative size", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "-1"}, says: "number of bytes"},
		{name: "not a size", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_MAX_SIZE": "lots"}, says: "number of bytes"},
		{name: "short link key", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_LINK_KEYS": "k:c2hvcnQ"}, says: "at least 32"},
		{name: "short key in the older variable", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_LINK_KEY": "k:c2hvcnQ"}, says: "at least 32"},
		{name: "one key id twice", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_LINK_KEYS": key("k", 1) + "," + key("k", 2)}, says: "twice"},
		{name: "bad share URL", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_SHARE_URL": "ftp://x/"}, says: "https://"},
		{name: "bad share URL with keys", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_LINK_KEYS": keys, "CLAIMSTASH_SHARE_URL": "https://u:p@x/"}, says: "credentials", bad: "CLAIMSTASH_SHARE_URL"},
		{name: "origin with a path", env: map[string]string{"CLAIMSTASH_BACKEND": "mem://", "CLAIMSTASH_TRUSTED_ORIGINS": "https://a.example,https://h.example/path"}, says: "origin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				if !strings.HasPrefix(k, "CLAIMSTASH_") {
					t.Setenv(k, v) // restored after the test, if openDriver sets it
				}
			}
			// The variable of the setting at fault: the case's only
			// one besides the backend, or the backend.
			setVar := c.bad
			for k := range c.env {
				if setVar == "" && k != "CLAIMSTASH_BACKEND" && strings.HasPrefix(k, "CLAIMSTASH_") {
					setVar = k
				}
			}
			if setVar == "" {
				setVar = "CLAIMSTASH_BACKEND"
			}
			setFlag := flagsOf(map[string]string{setVar: ""})[0]
			setFlag = strings.TrimSuffix(setFlag, "=")

			lib, libErr := claimstash.EngineFromEnv(ctx, claimstash.WithGetenv(func(k string) string { return c.env[k] }))
			viaEnv, envErr := cliEngine(t, c.env)
			viaFlags, flagErr := cliEngine(t, nil, flagsOf(c.env)...)
			if lib != nil {
				defer lib.Close()
			}
			if viaEnv != nil {
				defer viaEnv.Close()
			}
			if viaFlags != nil {
				defer viaFlags.Close()
			}

			if c.want == nil {
				for _, r := range []struct {
					path, name string
					err        error
				}{
					{"OpenEnv", setVar, libErr},
					{"the command line's variables", setVar, envErr},
					{"the command line's flags", setFlag, flagErr},
				} {
					if r.err == nil {
						t.Errorf("%s took %v", r.path, c.env)
						continue
					}
					msg := r.err.Error()
					if r.path != "OpenEnv" {
						msg = operatorMessage(r.err)
						if code, _ := exitCode(ctx, r.err); code != exitUsage {
							t.Errorf("%s: exit %d, want %d (usage)", r.path, code, exitUsage)
						}
					}
					if c.says == "no backend" && r.path == "the command line's flags" {
						r.name = "--backend"
					}
					if !strings.Contains(msg, r.name) || !strings.Contains(msg, c.says) {
						t.Errorf("%s: %q: want it to name %s and say %q", r.path, msg, r.name, c.says)
					}
					if r.path == "OpenEnv" {
						// A library's error chains package prefixes
						// (claimstash: ...: stash: ...), but names no
						// Go identifier either.
						if m := libGoIdentifiers.FindString(msg); m != "" {
							t.Errorf("%s names Go identifiers (%q): %s", r.path, m, msg)
						}
					} else {
						noGoIdentifiers(t, r.path, msg)
					}
					if strings.Contains(msg, strings.Repeat("A", 20)) || strings.Contains(msg, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))) {
						t.Errorf("%s: %q shows a secret", r.path, msg)
					}
				}
				return
			}
			for path, err := range map[string]error{"OpenEnv": libErr, "the command line's variables": envErr, "the command line's flags": flagErr} {
				if err != nil {
					t.Fatalf("%s refused %v: %v", path, c.env, err)
				}
			}
			w := *c.want
			if w.namespace == "" {
				w.namespace = stash.DefaultNamespace
			}
			if w.maxSize == 0 {
				w.maxSize = stash.DefaultMaxSize
			}
			// What OpenEnv stores in its file backend, the command line
			// reads: the same directory.
			var created *stash.Stash
			payload := bytes.Repeat([]byte("x"), 700)
			if w.dir != "" {
				if created, err = lib.Create(ctx, "parity", payload, stash.NoInline()); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(w.dir, w.namespace)); err != nil {
					t.Errorf("OpenEnv stored outside %s: %v", w.dir, err)
				}
			}
			for path, e := range map[string]*stash.Engine{"OpenEnv": lib, "the command line's variables": viaEnv.Engine, "the command line's flags": viaFlags.Engine} {
				if got := strings.Join(e.Schemes(), ","); got != w.schemes {
					t.Errorf("%s: backends %s, want %s", path, got, w.schemes)
				}
				if e.Namespace() != w.namespace {
					t.Errorf("%s: namespace %s, want %s", path, e.Namespace(), w.namespace)
				}
				if e.MaxSize() != w.maxSize {
					t.Errorf("%s: max size %d, want %d", path, e.MaxSize(), w.maxSize)
				}
				if created != nil {
					if got, err := e.Retrieve(ctx, created.Address.String()); err != nil || !bytes.Equal(got.Data, payload) {
						t.Errorf("%s: reading what OpenEnv stored at %s: %v", path, created.Address, err)
					}
				}
				trusts := ""
				for i, l := range []string{signed, trustedOnly, untrusted} {
					if e.TrustsLink(l) == nil {
						trusts += string("stu"[i])
					}
				}
				if trusts != w.trusts {
					t.Errorf("%s: trusts %q of the probe links, want %q", path, trusts, w.trusts)
				}
			}
		})
	}
}

// libGoIdentifiers is goIdentifiers without its rule against a repeated
// package prefix.
var libGoIdentifiers = regexp.MustCompile(`\b(With|Default|Err|Max|Min|New|Parse|Trust|Verify)[A-Z][A-Za-z]*\b|\b[a-z]+\.[A-Z][A-Za-z]+\b|missing import`)

func mustKeys(t *testing.T, s string) []links.Key {
	t.Helper()
	k, err := links.ParseKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustHMAC(t *testing.T, base, keys string) *links.HMAC {
	t.Helper()
	h, err := links.NewHMAC(base, mustKeys(t, keys)...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// signLink is a share link h signs, as an engine's Share makes it.
func signLink(t *testing.T, h *links.HMAC) string {
	t.Helper()
	e, err := stash.New(stash.WithBackendURL(context.Background(), "mem://"), stash.WithLinkSigner(h))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Create(context.Background(), "p", bytes.Repeat([]byte("p"), 700), stash.NoInline())
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Share(context.Background(), s.Address.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
