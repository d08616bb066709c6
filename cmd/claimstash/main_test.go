package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cli runs one command in-process, with no CLAIMSTASH_ variables but those
// the test sets.
func cli(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliCtx(t, context.Background(), stdin, args...)
}

func cliCtx(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code = run(ctx, args, stdin, &out, &errb)
	return out.String(), errb.String(), code
}

// mustCLI runs a command that must succeed and returns its trimmed stdout.
func mustCLI(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, stdin, args...)
	if code != 0 {
		t.Fatalf("claimstash %s: exit %d\nstderr: %s", strings.Join(args, " "), code, errs)
	}
	return strings.TrimSpace(out)
}

// backend is a fresh file backend in a temporary directory.
func backend(t *testing.T) (flag, dir string) {
	dir = t.TempDir()
	return "--backend=file://" + dir + "?create_dir=true&nosync=true", dir
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// goIdentifiers matches what an operator should never read: option and
// constant names, package-qualified identifiers, a repeated package prefix.
var goIdentifiers = regexp.MustCompile(`\b(With|Default|Err|Max|Min|New|Parse|Trust|Verify)[A-Z][A-Za-z]*\b|\b[a-z]+\.[A-Z][A-Za-z]+\b|missing import|stash: .*stash: `)

func noGoIdentifiers(t *testing.T, what, s string) {
	t.Helper()
	if m := goIdentifiers.FindString(s); m != "" {
		t.Errorf("%s names Go identifiers (%q):\n%s", what, m, s)
	}
}

func TestPutGetRoundTrip(t *testing.T) {
	be, _ := backend(t)
	src := filepath.Join(t.TempDir(), "orders batch.json")
	data := randomBytes(3<<20 + 17)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := mustCLI(t, nil, "put", be, src)
	if !strings.HasPrefix(addr, "file://default/orders-batch.json.") {
		t.Fatalf("put printed %q", addr)
	}
	// Same content, same address; flags after the arguments.
	if again := mustCLI(t, nil, "put", src, be); again != addr {
		t.Errorf("second put: %s, want %s", again, addr)
	}
	stdout, errs, code := cli(t, nil, "get", addr, be)
	if code != 0 || stdout != string(data) || errs != "" {
		t.Fatalf("get to stdout: exit %d, %d bytes; stderr %q", code, len(stdout), errs)
	}
	dst := filepath.Join(t.TempDir(), "out.bin")
	mustCLI(t, nil, "get", be, addr, "-o", dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get -o: %d bytes, %v", len(got), err)
	}
	var gj getJSON
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "get", be, addr, "-o", dst, "--json")), &gj); err != nil || gj.Output != dst || gj.Stash.Address != addr {
		t.Errorf("get -o --json: %+v, %v", gj, err)
	}
	if _, errs, code := cli(t, nil, "get", be, addr, "--json"); code != exitUsage || !strings.Contains(errs, "-o FILE") {
		t.Errorf("get --json to stdout: exit %d, %s", code, errs)
	}
	// Stdin, with a name and a namespace.
	addr2 := mustCLI(t, bytes.NewReader(data[:1000]), "put", be, "--namespace", "ops", "--name", "piped", "--no-inline", "-")
	if !strings.HasPrefix(addr2, "file://ops/piped.") {
		t.Fatalf("put from stdin printed %q", addr2)
	}
	if out, _, _ := cli(t, nil, "get", be, addr2); out != string(data[:1000]) {
		t.Fatal("stdin round trip differs")
	}
	// A small payload travels inline and needs no backend to read.
	inline := mustCLI(t, strings.NewReader("hi"), "put", be)
	if !strings.HasPrefix(inline, "inline://default/stdin?data=") {
		t.Fatalf("small put: %q", inline)
	}
	if out, _, code := cli(t, nil, "get", inline); code != 0 || out != "hi" {
		t.Fatalf("inline get without backend: %q, exit %d", out, code)
	}
}

// TestPlainPathBackend: a directory is a file backend, absolute or
// relative to the working directory (as in CLAIMSTASH_BACKEND and
// claimstash.OpenEnv); a path starting with ~, which no shell expanded, is
// refused.
func TestPlainPathBackend(t *testing.T) {
	dir := t.TempDir()
	addr := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", "--backend", dir, "--name", "p")
	if !strings.HasPrefix(addr, "file://default/p.") {
		t.Fatalf("put to a plain path: %q", addr)
	}
	if _, err := os.Stat(filepath.Join(dir, "default")); err != nil {
		t.Errorf("the stash is not under the directory: %v", err)
	}
	mustCLI(t, nil, "stat", "-b", "file://"+dir, addr)
	t.Chdir(dir)
	mustCLI(t, nil, "stat", "-b", ".", addr)
	mustCLI(t, nil, "stat", "--backend=./", addr)
	t.Chdir(filepath.Dir(dir))
	mustCLI(t, nil, "stat", "-b", filepath.Base(dir), addr)
	t.Setenv("CLAIMSTASH_BACKEND", filepath.Base(dir)+"/default/..")
	mustCLI(t, nil, "stat", addr)
	if _, errs, code := cli(t, nil, "stat", "-b", "~/stashes", addr); code != exitUsage || !strings.Contains(errs, "--backend") || !strings.Contains(errs, "no shell expanded") {
		t.Errorf("a backend starting with ~: exit %d, want %d naming --backend; %s", code, exitUsage, errs)
	}
}

func TestConfigFromEnv(t *testing.T) {
	_, dir := backend(t)
	t.Setenv("CLAIMSTASH_BACKEND", "file://"+dir+"?create_dir=true&nosync=true")
	t.Setenv("CLAIMSTASH_NAMESPACE", "envns")
	t.Setenv("CLAIMSTASH_TTL", "1h")
	t.Setenv("CLAIMSTASH_JSON", "true")
	var s stashJSON
	if err := json.Unmarshal([]byte(mustCLI(t, bytes.NewReader(randomBytes(500)), "put", "--name", "e")), &s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Address, "file://envns/e.") {
		t.Fatalf("put with env config: %q", s.Address)
	}
	if d := time.Until(s.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Errorf("CLAIMSTASH_TTL=1h: expires_at %v", s.ExpiresAt)
	}
	// A flag wins over its variable.
	if err := json.Unmarshal([]byte(mustCLI(t, bytes.NewReader(randomBytes(500)), "put", "--name", "f", "--ttl", "2h")), &s); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(s.ExpiresAt); d < 119*time.Minute || d > 2*time.Hour {
		t.Errorf("--ttl 2h over CLAIMSTASH_TTL=1h: expires_at %v", s.ExpiresAt)
	}
	// The older name of --link-keys' variable is read when the new one is unset.
	t.Setenv("CLAIMSTASH_JSON", "")
	t.Setenv("CLAIMSTASH_LINK_KEY", linkKeys())
	t.Setenv("CLAIMSTASH_SHARE_URL", "http://127.0.0.1:1/")
	stored := mustCLI(t, bytes.NewReader(randomBytes(500)), "put", "--name", "g", "--no-inline")
	if link := mustCLI(t, nil, "share", stored); !strings.Contains(link, "kid=k2") {
		t.Errorf("share with CLAIMSTASH_LINK_KEY: %q", link)
	}
	t.Setenv("CLAIMSTASH_MAX_SIZE", "100")
	if _, errs, code := cli(t, bytes.NewReader(randomBytes(500)), "put", "--name", "big"); code != 1 || !strings.Contains(errs, "too large") {
		t.Errorf("put over CLAIMSTASH_MAX_SIZE: exit %d, %s", code, errs)
	}
	// Sizes with units: SI and binary.
	t.Setenv("CLAIMSTASH_MAX_SIZE", "1kB")
	if _, errs, code := cli(t, bytes.NewReader(randomBytes(1001)), "put", "--name", "big"); code != 1 || !strings.Contains(errs, "limit of 1000") {
		t.Errorf("put over CLAIMSTASH_MAX_SIZE=1kB: exit %d, %s", code, errs)
	}
	if _, errs, code := cli(t, bytes.NewReader(randomBytes(1001)), "put", "--name", "fits", "--max-size", "1KiB"); code != 0 {
		t.Errorf("put of 1001 bytes under --max-size 1KiB: exit %d, %s", code, errs)
	}
	t.Setenv("CLAIMSTASH_MAX_SIZE", "lots")
	if _, errs, code := cli(t, nil, "put"); code != exitUsage || !strings.Contains(errs, "CLAIMSTASH_MAX_SIZE") {
		t.Errorf("bad CLAIMSTASH_MAX_SIZE: exit %d, %s", code, errs)
	}
}

// TestEveryFlagHasAVariable walks every command's flags and checks that
// its CLAIMSTASH_ variable sets it.
func TestEveryFlagHasAVariable(t *testing.T) {
	a := newApp(strings.NewReader(""), io.Discard, io.Discard)
	root := a.newRoot()
	n := 0
	var walk func(*cobraCommand)
	walk = func(c *cobraCommand) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() {
			return
		}
		// Inherited flags join a command's flag set when it runs.
		c.InheritedFlags()
		c.Flags().VisitAll(func(f *pflagFlag) {
			if noEnv(f) {
				return
			}
			sample := map[string]string{"bool": "true", "duration": "90m", "int64": "12345", "bytes": "12345", "list": "mem://", "stringArray": "k=v", "int": "12"}[f.Value.Type()]
			if sample == "" {
				sample = "sample-value"
			}
			name := envName(f.Name)
			if !strings.Contains(f.Usage, "["+name+"]") {
				t.Errorf("%s --%s: help does not name %s", c.CommandPath(), f.Name, name)
			}
			env := map[string]string{name: sample}
			before := f.Value.String()
			if err := bindEnv(c, func(k string) string { return env[k] }); err != nil {
				t.Errorf("%s: %s=%s: %v", c.CommandPath(), name, sample, err)
				return
			}
			if got := f.Value.String(); !strings.Contains(got, strings.TrimSuffix(sample, "m")) && got == before {
				t.Errorf("%s: %s=%s left --%s at %q", c.CommandPath(), name, sample, f.Name, got)
			}
			if !f.Changed {
				t.Errorf("%s: %s did not set --%s", c.CommandPath(), name, f.Name)
			}
			n++
		})
	}
	walk(root)
	if n < 30 {
		t.Errorf("checked %d flags: the walk missed commands", n)
	}
}

func TestVersionAndHelp(t *testing.T) {
	out := mustCLI(t, nil, "--version")
	if !strings.HasPrefix(out, "claimstash ") || !strings.Contains(out, "go1.") {
		t.Errorf("--version: %q", out)
	}
	a := newApp(strings.NewReader(""), io.Discard, io.Discard)
	var walk func(*cobraCommand)
	walk = func(c *cobraCommand) {
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "claimstash")), "--help")
		if c.Name() == "exit-codes" || c.Name() == "json" {
			args = []string{"help", c.Name()}
		}
		out, errs, code := cli(t, nil, args...)
		if code != 0 || out == "" {
			t.Errorf("claimstash %v: exit %d, %q %s", args, code, out, errs)
		}
		noGoIdentifiers(t, "help of "+c.CommandPath(), out)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.newRoot())
	if out := mustCLI(t, nil, "help", "exit-codes"); !strings.Contains(out, "130") || !strings.Contains(out, "integrity") {
		t.Errorf("help exit-codes: %s", out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := mustCLI(t, nil, "completion", sh); !strings.Contains(out, "claimstash") {
			t.Errorf("completion %s: %.100s", sh, out)
		}
	}
}

func TestStatJSON(t *testing.T) {
	be, _ := backend(t)
	addr := mustCLI(t, bytes.NewReader(bytes.Repeat([]byte("abc"), 10_000)), "put", be, "--name", "doc",
		"--content-type", "text/plain", "--meta", "team=ops", "--meta", "ticket=42", "--ttl", "1h", "--origin", "test")
	out := mustCLI(t, nil, "stat", addr, be, "--json")
	var got stashJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Address != addr || got.Name != "doc" || got.Namespace != "default" || got.Size != 30_000 ||
		got.ContentType != "text/plain" || got.Metadata["team"] != "ops" || got.Metadata["ticket"] != "42" ||
		got.Origin != "test" || got.Encoding != "zstd" || got.StoredSize >= got.Size || got.Digest == "" {
		t.Errorf("stat --json: %+v", got)
	}
	if d := time.Until(got.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expires_at %v, want about an hour from now", got.ExpiresAt)
	}
	if strings.Count(out, "expir") != 1 {
		t.Errorf("stat --json has more than one expiry field:\n%s", out)
	}
	text := mustCLI(t, nil, "stat", be, addr)
	for _, want := range []string{"name:         doc", "size:         30000 (29.3 KiB)", "encoding:     zstd", "metadata:     team=ops"} {
		if !strings.Contains(text, want) {
			t.Errorf("stat text lacks %q:\n%s", want, text)
		}
	}
	var putJSON stashJSON
	if err := json.Unmarshal([]byte(mustCLI(t, strings.NewReader(strings.Repeat("x", 300)), "put", be, "--json")), &putJSON); err != nil || putJSON.Size != 300 {
		t.Errorf("put --json: %+v, %v", putJSON, err)
	}
}

func TestRm(t *testing.T) {
	be, _ := backend(t)
	a1 := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be)
	a2 := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be)
	if out := mustCLI(t, nil, "rm", be, a1); out != "deleted "+a1 {
		t.Errorf("rm printed %q", out)
	}
	if _, _, code := cli(t, nil, "stat", be, a1); code != exitNotFound {
		t.Errorf("stat after rm: exit %d, want %d", code, exitNotFound)
	}
	if _, _, code := cli(t, nil, "get", be, a1); code != exitNotFound {
		t.Errorf("get after rm: exit %d, want %d", code, exitNotFound)
	}
	// One missing, one present: the present one is deleted, the exit says not found.
	out, errs, code := cli(t, nil, "rm", be, "--json", a1, a2)
	if code != exitNotFound {
		t.Errorf("rm of a missing stash: exit %d", code)
	}
	var res rmJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Deleted) != 1 || res.Deleted[0] != a2 || len(res.Missing) != 1 || res.Missing[0] != a1 {
		t.Errorf("rm --json: %q, %v", out, err)
	}
	var ej errorJSON
	if err := json.Unmarshal([]byte(errs), &ej); err != nil || ej.Error.Kind != "not_found" || ej.Error.Exit != exitNotFound || ej.Error.Command != "rm" {
		t.Errorf("rm --json error on stderr: %q, %v", errs, err)
	}
	// -f: a stash already gone is not an error.
	if out, errs, code := cli(t, nil, "rm", "-f", be, a1); code != 0 || !strings.Contains(out, "already gone") {
		t.Errorf("rm -f of a missing stash: exit %d, %q %s", code, out, errs)
	}
	// Inline: nothing was stored, and rm says so.
	inline := mustCLI(t, strings.NewReader("tiny"), "put")
	if out := mustCLI(t, nil, "rm", inline); !strings.Contains(out, "nothing was stored") {
		t.Errorf("rm of an inline address: %q", out)
	}
}

func TestSweepAndLs(t *testing.T) {
	be, _ := backend(t)
	keep := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "--name", "keep", "--ttl", "3h")
	gone := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "--name", "gone", "--ttl", "10ms")
	other := mustCLI(t, bytes.NewReader(randomBytes(2000)), "put", be, "-n", "other", "--name", "elsewhere")
	time.Sleep(20 * time.Millisecond)
	ls := mustCLI(t, nil, "ls", be)
	lines := strings.Split(ls, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SIZE") || !strings.Contains(ls, keep) || !strings.Contains(ls, gone) ||
		strings.Contains(ls, other) || !strings.Contains(ls, "expired") || !regexp.MustCompile(`in (2h59m|3h00m)`).MatchString(ls) {
		t.Errorf("ls:\n%s", ls)
	}
	var n int
	sc := bufio.NewScanner(strings.NewReader(mustCLI(t, nil, "ls", be, "--all", "--json")))
	for sc.Scan() {
		var s stashJSON
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.Address == "" || s.Size == 0 {
			t.Errorf("ls --json line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("ls --all --json: %d lines, want 3", n)
	}
	if out := mustCLI(t, nil, "sweep", be, "--json"); !strings.Contains(out, `"swept": 1`) {
		t.Errorf("sweep --json: %s", out)
	}
	if out := mustCLI(t, nil, "sweep", be); out != "deleted 0 expired stashes" {
		t.Errorf("second sweep: %q", out)
	}
	mustCLI(t, nil, "stat", be, keep)
	if _, _, code := cli(t, nil, "stat", be, gone); code != exitNotFound {
		t.Errorf("swept stash: exit %d", code)
	}
}

// corrupt flips a byte in the middle of a stash of the file backend.
func corrupt(t *testing.T, dir, addr string) {
	t.Helper()
	f := filepath.Join(storedFile(dir, addr), "data")
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(f, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrityFailure(t *testing.T) {
	be, dir := backend(t)
	data := randomBytes(200 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "c")
	corrupt(t, dir, addr)
	dst := filepath.Join(t.TempDir(), "out")
	if _, errs, code := cli(t, nil, "get", be, "-o", dst, addr); code != exitIntegrity {
		t.Errorf("get of corrupt stash: exit %d, want %d; %s", code, exitIntegrity, errs)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("get -o left a file behind for a corrupt stash: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
	// To stdout, under the verify buffer: not one byte is written.
	out, errs, code := cli(t, nil, "get", be, addr)
	if code != exitIntegrity || out != "" {
		t.Errorf("get of corrupt stash to stdout: exit %d, %d bytes written; %s", code, len(out), errs)
	}
	noGoIdentifiers(t, "integrity error", errs)
	// Over the buffer: it streams, and stderr says the bytes are tentative.
	out, errs, code = cli(t, nil, "get", be, addr, "--verify-buffer", "1024")
	if code != exitIntegrity || !strings.Contains(errs, "tentative") || len(out) == 0 {
		t.Errorf("get over --verify-buffer: exit %d, %d bytes; %s", code, len(out), errs)
	}
}

func TestExitCodes(t *testing.T) {
	be, _ := backend(t)
	zero := strings.Repeat("0", 64)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"get", be}, exitUsage},
		{[]string{"stat", be, "a", "b"}, exitUsage},
		{[]string{"sweep"}, exitUsage}, // no backend
		{[]string{"put", "--bogus"}, exitUsage},
		{[]string{"put", be, "--meta", "novalue", "-"}, exitUsage},
		{[]string{"get", be, "mem://../x"}, exitUsage},            // malformed address: input
		{[]string{"stat", be, "file://default/x.00"}, exitUsage},  // bad digest
		{[]string{"get", "--backend", "ftp://x", "a"}, exitUsage}, // unknown scheme
		{[]string{"get", be, "file://default/x." + zero}, exitNotFound},
		{[]string{"put", be, "/does/not/exist"}, exitFailure},
		{[]string{"ls", "-b", "mem://"}, exitOK},
		{[]string{"serve", be}, exitUsage},                       // no link keys
		{[]string{"get", "file://default/x." + zero}, exitUsage}, // no backend for file://
		{[]string{"share", be, "--link-keys", linkKeys(), "--share-url", "ftp://x", "file://default/x." + zero}, exitUsage},
		{[]string{"help"}, exitOK},
		{[]string{"get", "-h"}, exitOK},
	} {
		_, errs, code := cli(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("claimstash %v: exit %d, want %d; %s", tc.args, code, tc.code, errs)
		}
		if strings.Count(errs, "\n") > 2 {
			t.Errorf("claimstash %v: error printed more than once:\n%s", tc.args, errs)
		}
		noGoIdentifiers(t, strings.Join(tc.args, " "), errs)
	}
	// Ctrl-C: the context is cancelled with the signal as its cause.
	ctx, cancel := context.WithCancelCause(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = pw.Write(randomBytes(10 << 20))
		cancel(interrupted{sig: 2})
		_, _ = pw.Write(randomBytes(1 << 20))
		pw.Close()
	}()
	if _, errs, code := cliCtx(t, ctx, pr, "put", be); code != 130 {
		t.Errorf("put interrupted: exit %d, want 130; %s", code, errs)
	}
}

func linkKeys() string {
	return "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)) +
		",k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
}

// startServe runs serve in the background and returns its base URL.
func startServe(t *testing.T, args ...string) (base string, stop func() (int, string)) {
	t.Helper()
	hello, stop := startServeHello(t, args...)
	return strings.TrimSuffix(hello.URL, "/"), stop
}

// startServeHello is startServe, returning what serve announced.
func startServeHello(t *testing.T, args ...string) (hello serveJSON, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var serveErr syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--json", "--drain", "0"}, args...), strings.NewReader(""), pw, &serveErr)
		pw.Close()
		done <- code
	}()
	dec := json.NewDecoder(pr)
	if err := dec.Decode(&hello); err != nil || hello.URL == "" {
		cancel()
		t.Fatalf("serve did not announce itself: %v; %s", err, serveErr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	stopped := false
	stop = func() (int, string) {
		if stopped {
			return 0, ""
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code, serveErr.String()
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not shut down")
		}
		return -1, ""
	}
	t.Cleanup(func() { stop() })
	return hello, stop
}

func TestShareServeGet(t *testing.T) {
	be, _ := backend(t)
	keys := "--link-keys=" + linkKeys()
	data := randomBytes(1<<20 + 3)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "shared")
	base, stop := startServe(t, be, keys, "--no-auth")

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}

	shareURL := "--share-url=" + base + "/s/"
	link := mustCLI(t, nil, "share", be, keys, shareURL, "--link-ttl", "5m", addr)
	if !strings.HasPrefix(link, base+"/s/file/default/shared.") || !strings.Contains(link, "kid=k2") {
		t.Fatalf("share printed %q", link)
	}
	// Anyone can fetch it over plain HTTP.
	resp, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET link: %s, %d bytes", resp.Status, len(body))
	}
	// get reads the link share printed, with the same settings, no --trust.
	out, errs, code := cli(t, nil, "get", keys, shareURL, link)
	if code != 0 || out != string(data) {
		t.Fatalf("get of its own link: exit %d, %d bytes; %s", code, len(out), errs)
	}
	// With no settings at all but --trust, the digest is still verified.
	out, errs, code = cli(t, nil, "get", "--trust", base, link)
	if code != 0 || out != string(data) {
		t.Fatalf("get link with --trust: exit %d, %d bytes; %s", code, len(out), errs)
	}
	// Without trust, the link is refused and nothing is fetched.
	out, errs, code = cli(t, nil, "get", link)
	if code != exitRefused || out != "" || !strings.Contains(errs, "--trusted-origins") {
		t.Errorf("get of untrusted link: exit %d, %d bytes; %s", code, len(out), errs)
	}
	noGoIdentifiers(t, "untrusted link", errs)
	// Tampered: the signature no longer verifies.
	bad := strings.Replace(link, "exp=", "exp=9", 1)
	if out, errs, code := cli(t, nil, "get", "--trust", base, bad); code != exitRefused || out != "" || !strings.Contains(errs, "refused") {
		t.Errorf("get of tampered link: exit %d, %d bytes, %s", code, len(out), errs)
	}
	var sj shareJSON
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "share", be, keys, "--share-url", base, "--json", addr)), &sj); err != nil ||
		!strings.HasPrefix(sj.URL, base+"/file/") || sj.Address != addr || time.Until(sj.ExpiresAt) < 14*time.Minute {
		t.Errorf("share --json: %+v %v", sj, err)
	}
	if _, errs, code := cli(t, nil, "share", be, addr); code != exitUsage || !strings.Contains(errs, "--link-keys") {
		t.Errorf("share without keys: exit %d, %s", code, errs)
	} else {
		noGoIdentifiers(t, "share without keys", errs)
	}

	// Range, ETag and If-None-Match.
	get := func(h map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, link, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body = get(map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) ||
		resp.Header.Get("Content-Range") != "bytes 100-199/"+itoa(len(data)) {
		t.Errorf("Range 100-199: %s %q, %d bytes", resp.Status, resp.Header.Get("Content-Range"), len(body))
	}
	resp, body = get(map[string]string{"Range": "bytes=-10"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[len(data)-10:]) {
		t.Errorf("Range -10: %s, %d bytes", resp.Status, len(body))
	}
	resp, _ = get(map[string]string{"Range": "bytes=99999999-"})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("Range past the end: %s", resp.Status)
	}
	resp, body = get(nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("GET: %s, %d bytes", resp.Status, len(body))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp, body = get(map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match: %s, %d bytes", resp.Status, len(body))
	}
	resp, body = get(map[string]string{"If-None-Match": `"other"`})
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("If-None-Match of another tag: %s, %d bytes", resp.Status, len(body))
	}

	// Graceful shutdown on cancel (SIGINT/SIGTERM in main), and an access log.
	code, log := stop()
	if code != 0 {
		t.Fatalf("serve exit %d: %s", code, log)
	}
	if !strings.Contains(log, `"msg":"request"`) || !strings.Contains(log, `"status":206`) || !strings.Contains(log, `"status":304`) || strings.Contains(log, "sig=") {
		t.Errorf("access log:\n%s", log)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestKeygen(t *testing.T) {
	key := mustCLI(t, nil, "keygen", "--key-id", "k9")
	if !strings.HasPrefix(key, "k9:") {
		t.Fatalf("keygen: %q", key)
	}
	if key2 := mustCLI(t, nil, "keygen", "--key-id", "k9"); key2 == key {
		t.Error("keygen made the same key twice")
	}
	var kj keyJSON
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "keygen", "--json")), &kj); err != nil || kj.Kind != "link" || kj.Key != kj.ID+":"+kj.Secret {
		t.Errorf("keygen --json: %+v %v", kj, err)
	}
	// The key works for share and serve.
	be, _ := backend(t)
	addr := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "--no-inline")
	mustCLI(t, nil, "share", be, "--link-keys", key, "--share-url", "http://127.0.0.1:1/", addr)
	if _, errs, code := cli(t, nil, "keygen", "--kind", "pgp"); code != exitUsage {
		t.Errorf("keygen --kind pgp: exit %d %s", code, errs)
	}
	if _, errs, code := cli(t, nil, "keygen", "--key-id", "no spaces"); code != exitUsage {
		t.Errorf("keygen of a bad id: exit %d %s", code, errs)
	}
}

func TestInspect(t *testing.T) {
	be, dir := backend(t)
	data := randomBytes(300 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "orders")
	kcat := func(headers any, payload string) string {
		b, _ := json.Marshal(map[string]any{"topic": "orders", "partition": 0, "offset": 7, "headers": headers, "key": nil, "payload": payload})
		return string(b) + "\n"
	}
	size := itoa(len(data))
	msg := kcat([]string{"claimstash-version", "1", "claimstash-size", size, "trace", "abc"}, addr)
	out := mustCLI(t, strings.NewReader(msg), "inspect", be)
	for _, want := range []string{"claim-checked: yes", "claimstash-size: " + size, "address: " + addr, "header: trace: abc", "verified: yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	// The object form of headers, and --json.
	var res inspectJSON
	if err := json.Unmarshal([]byte(mustCLI(t, strings.NewReader(kcat(map[string]string{"claimstash-version": "1", "claimstash-size": size}, addr)), "inspect", be, "--json")), &res); err != nil ||
		!res.ClaimChecked || !res.Verified || res.Address != addr || res.Size != int64(len(data)) || res.Stash == nil || res.Stash.Digest == "" {
		t.Errorf("inspect --json: %+v %v", res, err)
	}
	// Headers and body from files.
	hf, bf := filepath.Join(t.TempDir(), "h"), filepath.Join(t.TempDir(), "b")
	_ = os.WriteFile(hf, []byte("claimstash-version: 1\nclaimstash-size: "+size+"\n"), 0o600)
	_ = os.WriteFile(bf, []byte(addr), 0o600)
	if out := mustCLI(t, nil, "inspect", be, "--headers", hf, "--body", bf); !strings.Contains(out, "verified: yes") {
		t.Errorf("inspect --headers --body:\n%s", out)
	}
	// A size header that lies is an integrity failure.
	lie := kcat([]string{"claimstash-version", "1", "claimstash-size", "12"}, addr)
	if _, errs, code := cli(t, strings.NewReader(lie), "inspect", be); code != exitIntegrity || !strings.Contains(errs, "claimstash-size") {
		t.Errorf("inspect with a lying size: exit %d %s", code, errs)
	}
	// Not claim-checked: shown, passes.
	if out := mustCLI(t, strings.NewReader(kcat(nil, "plain body")), "inspect", be); !strings.Contains(out, "claim-checked: no") {
		t.Errorf("inspect of a plain message: %s", out)
	}
	// Broken contract: input error.
	bad := kcat([]string{"claimstash-version", "1", "claimstash-size", "x"}, addr)
	if _, errs, code := cli(t, strings.NewReader(bad), "inspect", be); code != exitUsage {
		t.Errorf("inspect of a malformed message: exit %d %s", code, errs)
	}
	if _, errs, code := cli(t, strings.NewReader("not json"), "inspect", be); code != exitUsage {
		t.Errorf("inspect of garbage: exit %d %s", code, errs)
	}
	// A tampered stash: integrity.
	corrupt(t, dir, addr)
	if _, errs, code := cli(t, strings.NewReader(msg), "inspect", be); code != exitIntegrity {
		t.Errorf("inspect of a tampered stash: exit %d %s", code, errs)
	}
}
