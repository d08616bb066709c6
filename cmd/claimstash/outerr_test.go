package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/filestash"
)

// fullWriter is stdout on a full disk: every write fails, as /dev/full's do.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// A command whose output never reached stdout did not do its job: put's
// address, keygen's key, stat's attributes, the help itself lost on a full
// disk must not exit 0, and the failure is not a usage error.
func TestOutputToFullDisk(t *testing.T) {
	be, _ := backend(t)
	src := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(src, randomBytes(4096), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := mustCLI(t, nil, "put", be, "--no-inline", src)
	for _, args := range [][]string{
		{"put", be, "--quiet", "--no-inline", src},
		{"put", be, "--quiet", src},
		{"put", be, "--quiet", "--json", src},
		{"stat", be, addr},
		{"ls", be},
		{"keygen"},
		{"keygen", "--json"},
		{"get", be, "--quiet", addr},
		{"--help"},
		{"put", "--help"},
		{"--version"},
		{"help", "exit-codes"},
		{"completion", "bash"},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), fullWriter{}, &errb)
		if code != exitFailure {
			t.Errorf("%s > /dev/full: exit %d; want %d\nstderr: %s", strings.Join(args, " "), code, exitFailure, errb.String())
		}
		if !strings.Contains(errb.String(), "no space left on device") {
			t.Errorf("%s > /dev/full: stderr does not say why: %q", strings.Join(args, " "), errb.String())
		}
		if strings.Contains(errb.String(), "--help' for usage") {
			t.Errorf("%s > /dev/full: reported as a usage error: %q", strings.Join(args, " "), errb.String())
		}
	}
}

// The same through the real /dev/full, as a shell redirect gives it.
func TestOutputToDevFull(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full on this system")
	}
	defer f.Close()
	var errb bytes.Buffer
	code := run(context.Background(), []string{"keygen"}, strings.NewReader(""), f, &errb)
	if code != exitFailure || !strings.Contains(errb.String(), "no space left") {
		t.Fatalf("keygen > /dev/full: exit %d, stderr %q; want exit %d and the reason", code, errb.String(), exitFailure)
	}
}

// Attributes put would store altered (bytes that are not UTF-8 become
// U+FFFD in a JSON sidecar) or that split a line or a header are refused
// before anything is stored.
func TestPutRefusesHostileAttributes(t *testing.T) {
	be, dir := backend(t)
	src := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(src, []byte("payload"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{
		"--meta=k=\xff\xfe", "--meta=a\nforged=line", "--meta=k=\x1b[2J", "--meta=k=\u202eevil",
		"--content-type=text/plain\r\nX-Injected: 1", "--content-type=\xc3", "--origin=host\x00", "--origin=\x9b31m",
	} {
		out, errs, code := cli(t, nil, "put", be, "--quiet", "--no-inline", flag, src)
		if code != exitUsage {
			t.Errorf("put %q: exit %d; want %d (stdout %q, stderr %q)", flag, code, exitUsage, out, errs)
		}
		readableOutput(t, "put stderr", errs, 4096)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(left) != 0 {
		t.Errorf("refused puts stored %v", left)
	}
}

// stat shows what another writer stored (metadata, content type, origin)
// escaped: it can neither drive the terminal nor forge a line.
func TestStatEscapesStoredAttributes(t *testing.T) {
	_, dir := backend(t)
	fs, err := filestash.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(fs), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Create(context.Background(), "hostile", []byte("payload"),
		stash.Metadata(map[string]string{"k\nforged": "line\x1b]0;pwned\a", "bidi": "\u202etxt.exe"}),
		stash.ContentType("text/plain\x1b[2J"), stash.Origin("evil\r\norigin: forged"))
	if err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, nil, "stat", "--backend=file://"+dir, s.String())
	readableOutput(t, "stat stdout", out, 4096)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "forged") || strings.HasPrefix(l, "origin: forged") {
			t.Errorf("stat printed a forged line %q:\n%s", l, out)
		}
	}
	if !strings.Contains(out, `k\nforged=line\x1b]0;pwned\x07`) {
		t.Errorf("stat does not show the metadata, escaped:\n%s", out)
	}
}

// A negative --grace would have serve cut every request in flight at the
// first signal: refused before it listens.
func TestServeRefusesNegativeDurations(t *testing.T) {
	for _, flag := range []string{"--grace=-1s", "--drain=-1ns"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // ends a serve that started
		out, errs, code := cliCtx(t, ctx, nil, "serve", "--backend=mem://", "--no-auth", "--listen", "127.0.0.1:0", flag)
		cancel()
		if code != exitUsage || !strings.Contains(errs, "must not be negative") {
			t.Errorf("serve %s: exit %d (stdout %q, stderr %q); want %d and why", flag, code, out, errs, exitUsage)
		}
	}
}

// get -o DIR is refused before a byte is fetched, and leaves nothing in
// the directory (the rename at the end used to fail, naming a temporary
// file).
func TestGetIntoDirectory(t *testing.T) {
	be, _ := backend(t)
	src := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(src, randomBytes(1000), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := mustCLI(t, nil, "put", be, "--quiet", "--no-inline", src)
	dir := t.TempDir()
	_, errs, code := cli(t, nil, "get", be, "--quiet", "-o", dir, addr)
	if code != exitUsage || !strings.Contains(errs, "is a directory") || strings.Contains(errs, ".claimstash-") {
		t.Errorf("get -o DIR: exit %d, stderr %q; want %d and that it is a directory", code, errs, exitUsage)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("get -o DIR left %v in it", left)
	}
}

// Errors from the key loader read as the others do: no package prefix.
func TestServeKeyErrorsNamePackages(t *testing.T) {
	for _, keys := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		_, errs, code := cli(t, nil, "serve", "--backend=mem://", "--listen", "127.0.0.1:0", "--auth-keys", keys)
		if code != exitUsage || strings.Contains(errs, "osauth:") {
			t.Errorf("serve --auth-keys %s: exit %d, stderr %q; want %d without a package prefix", keys, code, errs, exitUsage)
		}
	}
}

// share --link-ttl outside what a link can live is a usage error, and 0
// (the engine's default lifetime) is reported with the expiry the link
// really has.
func TestShareLinkTTL(t *testing.T) {
	be, _ := backend(t)
	keys, shareURL := "--link-keys="+linkKeys(), "--share-url=https://stash.example/s/"
	src := filepath.Join(t.TempDir(), "x.bin")
	if err := os.WriteFile(src, randomBytes(1000), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := mustCLI(t, nil, "put", be, "--quiet", "--no-inline", src)
	for _, ttl := range []string{"-1s", "168h0m1s", "2562047h"} {
		out, errs, code := cli(t, nil, "share", be, keys, shareURL, "--link-ttl", ttl, addr)
		if code != exitUsage || out != "" {
			t.Errorf("share --link-ttl %s: exit %d, stdout %q, stderr %q; want %d and no link", ttl, code, out, errs, exitUsage)
		}
	}
	var got shareJSON
	before := time.Now()
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "share", "--json", be, keys, shareURL, "--link-ttl", "0", addr)), &got); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got.URL)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
	if err != nil {
		t.Fatalf("link %s: %v", got.URL, err)
	}
	if d := time.Unix(exp, 0).Sub(got.ExpiresAt); d < 0 || d > time.Second {
		t.Errorf("share --link-ttl 0 --json: expires_at %s, but the link expires at %s", got.ExpiresAt, time.Unix(exp, 0).UTC())
	}
	if got.ExpiresAt.Before(before.Add(stash.DefaultShareTTL - time.Second)) {
		t.Errorf("share --link-ttl 0: expires_at %s; want the default lifetime, %s", got.ExpiresAt, stash.DefaultShareTTL)
	}
}

// rm reports each address it could not delete on a line of its own, each
// without a package prefix.
func TestRmErrorsReadAsOthers(t *testing.T) {
	be, _ := backend(t)
	_, errs, code := cli(t, nil, "rm", be, "file://default/zz."+strings.Repeat("0", 64), "bad")
	if code == exitOK || strings.Contains(errs, "stash: ") || strings.Count(errs, "\n") < 2 {
		t.Errorf("rm of a missing and a malformed address: exit %d, stderr %q; want one line each, no package prefix", code, errs)
	}
}

// help of a topic that does not exist is a usage error; it printed the
// usage and exited 0.
func TestHelpUnknownTopic(t *testing.T) {
	for _, args := range [][]string{{"help", "nosuch"}, {"help", "put", "bogus"}, {"help", "\x1b[2J"}} {
		out, errs, code := cli(t, nil, args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, "no help topic") {
			t.Errorf("%q: exit %d, stdout %.60q, stderr %q; want %d and no help", args, code, out, errs, exitUsage)
		}
		readableOutput(t, "help stderr", errs, 4096)
	}
	for _, args := range [][]string{{"help"}, {"help", "put"}, {"help", "exit-codes"}, {"help", "help"}} {
		if out := mustCLI(t, nil, args...); out == "" {
			t.Errorf("%q printed nothing", args)
		}
	}
}

// put DIR is a usage error that says so, before any backend is opened.
func TestPutDirectory(t *testing.T) {
	be, dir := backend(t)
	src := t.TempDir()
	out, errs, code := cli(t, nil, "put", be, "--quiet", src)
	if code != exitUsage || out != "" || !strings.Contains(errs, "is a directory") {
		t.Errorf("put DIR: exit %d, stdout %q, stderr %q; want %d and that it is a directory", code, out, errs, exitUsage)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(left) != 0 {
		t.Errorf("put DIR stored %v", left)
	}
}

// serve that cannot announce where it listens does not start, with or
// without --json, rather than serve and fail only at shutdown.
func TestServeAnnouncementLost(t *testing.T) {
	for _, json := range []string{"--json=false", "--json=true"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // ends a serve that started
		var errb bytes.Buffer
		start := time.Now()
		code := run(ctx, []string{"serve", "--backend=mem://", "--no-auth", "--listen", "127.0.0.1:0", json}, strings.NewReader(""), fullWriter{}, &errb)
		cancel()
		if code != exitFailure || time.Since(start) > 4*time.Second || !strings.Contains(errb.String(), "no space left") {
			t.Errorf("serve %s > /dev/full: exit %d after %s, stderr %q; want %d at once", json, code, time.Since(start).Round(time.Millisecond), errb.String(), exitFailure)
		}
	}
}

// A file truncated while put reads it is not stored as a torn copy: put
// fails, says so, and nothing is stored. A file appended to is stored as
// read, its address the digest of the bytes stored.
func TestPutFileChangedWhileRead(t *testing.T) {
	be, dir := backend(t)
	src := filepath.Join(t.TempDir(), "log.bin")
	data := randomBytes(1 << 20)
	for _, c := range []struct {
		name   string
		change func(f *os.File)
		fails  bool
	}{
		{"truncated", func(f *os.File) { _ = os.Truncate(f.Name(), 1000) }, true},
		{"emptied", func(f *os.File) { _ = os.Truncate(f.Name(), 0) }, true},
		{"appended", func(f *os.File) {
			w, err := os.OpenFile(f.Name(), os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				_, _ = w.Write([]byte("more"))
				w.Close()
			}
		}, false},
	} {
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		a := newApp(strings.NewReader(""), &out, &errb)
		a.afterOpen = c.change
		code := a.run(context.Background(), []string{"put", be, "--quiet", "--no-inline", src})
		stored, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		switch {
		case c.fails && (code == exitOK || len(stored) != 0 || !strings.Contains(errb.String(), "shrank while it was read")):
			t.Errorf("put of a file %s while read: exit %d, stored %v, stderr %q; want a failure that says so and nothing stored", c.name, code, stored, errb.String())
		case !c.fails && code != exitOK:
			t.Errorf("put of a file %s while read: exit %d, stderr %q", c.name, code, errb.String())
		case !c.fails:
			got := filepath.Join(t.TempDir(), "got")
			mustCLI(t, nil, "get", be, "--quiet", "-o", got, strings.TrimSpace(out.String()))
			if b, _ := os.ReadFile(got); !bytes.Equal(b, append(data[:len(data):len(data)], "more"...)) {
				t.Errorf("put of a file %s while read stored %d bytes; want the %d it read", c.name, len(b), len(data)+4)
			}
		}
		for _, f := range stored {
			_ = os.RemoveAll(f)
		}
	}
}

// A backend that is down is a failure (exit 1), as "help exit-codes" says,
// not a usage error telling the operator to read --help.
func TestBackendDownIsFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, args := range [][]string{
		{"ls", "--backend", "nats://" + closed},
		{"get", "--backend", "nats://" + closed, "nats://default/x." + strings.Repeat("0", 64)},
	} {
		_, errs, code := cli(t, nil, args...)
		if code != exitFailure || strings.Contains(errs, "for usage") {
			t.Errorf("%v: exit %d, stderr %q; want %d, not a usage error", args, code, errs, exitFailure)
		}
		noGoIdentifiers(t, "backend down", errs)
	}
}
