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
	"strings"
	"testing"
	"time"
)

// cli runs one command in-process.
func cli(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), args, stdin, &out, &errb)
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
	return "-backend=file://" + dir + "?create_dir=true&nosync=true", dir
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestPutGetRoundTrip(t *testing.T) {
	be, _ := backend(t)
	src := filepath.Join(t.TempDir(), "orders batch.json")
	data := randomBytes(3<<20 + 17)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := mustCLI(t, nil, "put", be, src)
	if !strings.HasPrefix(addr, "file://default/orders_batch.json.") {
		t.Fatalf("put printed %q", addr)
	}
	// Same content, same address.
	if again := mustCLI(t, nil, "put", be, src); again != addr {
		t.Errorf("second put: %s, want %s", again, addr)
	}

	stdout, errs, code := cli(t, nil, "get", be, addr)
	if code != 0 || stdout != string(data) {
		t.Fatalf("get to stdout: exit %d, %d bytes; %s", code, len(stdout), errs)
	}
	dst := filepath.Join(t.TempDir(), "out.bin")
	mustCLI(t, nil, "get", be, "-o", dst, addr)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get -o: %d bytes, %v", len(got), err)
	}

	// Stdin, with a name and a namespace.
	addr2 := mustCLI(t, bytes.NewReader(data[:1000]), "put", be, "-namespace", "ops", "-name", "piped", "-no-inline", "-")
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

func TestConfigFromEnv(t *testing.T) {
	_, dir := backend(t)
	t.Setenv("CLAIMSTASH_BACKEND", "file://"+dir+"?create_dir=true&nosync=true")
	t.Setenv("CLAIMSTASH_NAMESPACE", "envns")
	addr := mustCLI(t, bytes.NewReader(randomBytes(500)), "put", "-name", "e")
	if !strings.HasPrefix(addr, "file://envns/e.") {
		t.Fatalf("put with env config: %q", addr)
	}
	t.Setenv("CLAIMSTASH_MAX_SIZE", "100")
	if _, errs, code := cli(t, bytes.NewReader(randomBytes(500)), "put", "-name", "big"); code != 1 || !strings.Contains(errs, "too large") {
		t.Errorf("put over CLAIMSTASH_MAX_SIZE: exit %d, %s", code, errs)
	}
}

func TestStatJSON(t *testing.T) {
	be, _ := backend(t)
	addr := mustCLI(t, bytes.NewReader(bytes.Repeat([]byte("abc"), 10_000)), "put", be, "-name", "doc",
		"-content-type", "text/plain", "-meta", "team=ops", "-meta", "ticket=42", "-ttl", "1h", "-origin", "test")
	var got stashJSON
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "stat", be, "-json", addr)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Address != addr || got.Name != "doc" || got.Namespace != "default" || got.Size != 30_000 ||
		got.ContentType != "text/plain" || got.Metadata["team"] != "ops" || got.Metadata["ticket"] != "42" ||
		got.Origin != "test" || got.Encoding != "zstd" || got.StoredSize >= got.Size || got.Digest == "" {
		t.Errorf("stat -json: %+v", got)
	}
	if d := time.Until(got.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expires_at %v, want about an hour from now", got.ExpiresAt)
	}
	text := mustCLI(t, nil, "stat", be, addr)
	for _, want := range []string{"name:         doc", "size:         30000 (29.3 KiB)", "encoding:     zstd", "metadata:     team=ops"} {
		if !strings.Contains(text, want) {
			t.Errorf("stat text lacks %q:\n%s", want, text)
		}
	}
	var putJSON stashJSON
	if err := json.Unmarshal([]byte(mustCLI(t, strings.NewReader(strings.Repeat("x", 300)), "put", be, "-json")), &putJSON); err != nil || putJSON.Size != 300 {
		t.Errorf("put -json: %+v, %v", putJSON, err)
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
	out, _, code := cli(t, nil, "rm", be, "-json", a1, a2)
	if code != exitNotFound {
		t.Errorf("rm of a missing stash: exit %d", code)
	}
	var res struct{ Deleted []string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Deleted) != 1 || res.Deleted[0] != a2 {
		t.Errorf("rm -json: %q, %v", out, err)
	}
}

func TestSweep(t *testing.T) {
	be, _ := backend(t)
	keep := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be)
	gone := mustCLI(t, bytes.NewReader(randomBytes(1000)), "put", be, "-ttl", "10ms")
	time.Sleep(20 * time.Millisecond)
	if out := mustCLI(t, nil, "sweep", be, "-json"); !strings.Contains(out, `"deleted": 1`) {
		t.Errorf("sweep -json: %s", out)
	}
	if out := mustCLI(t, nil, "sweep", be); out != "deleted 0 expired stashes" {
		t.Errorf("second sweep: %q", out)
	}
	mustCLI(t, nil, "stat", be, keep)
	if _, _, code := cli(t, nil, "stat", be, gone); code != exitNotFound {
		t.Errorf("swept stash: exit %d", code)
	}
}

func TestIntegrityFailure(t *testing.T) {
	be, dir := backend(t)
	data := randomBytes(200 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "-name", "c")
	// Corrupt the stored bytes behind the driver's back.
	_, key, _ := strings.Cut(strings.TrimPrefix(addr, "file://"), "/")
	f := filepath.Join(dir, "default", key, "data")
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(f, raw, 0o600); err != nil {
		t.Fatal(err)
	}
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
}

func TestUsage(t *testing.T) {
	be, _ := backend(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"frobnicate"}, exitUsage},
		{[]string{"get", be}, exitUsage},
		{[]string{"stat", be, "a", "b"}, exitUsage},
		{[]string{"sweep"}, exitUsage}, // no backend
		{[]string{"put", "-bogus"}, exitUsage},
		{[]string{"put", be, "-meta", "novalue", "-"}, exitUsage},
		{[]string{"get", be, "mem://../x"}, exitFailure},
		{[]string{"put", be, "/does/not/exist"}, exitFailure},
		{[]string{"help"}, exitOK},
		{[]string{"get", "-h"}, exitOK},
	} {
		_, errs, code := cli(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("claimstash %v: exit %d, want %d; %s", tc.args, code, tc.code, errs)
		}
	}
}

func linkKeys() string {
	return "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)) +
		",k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
}

func TestShareServeGet(t *testing.T) {
	be, _ := backend(t)
	keys := "-link-keys=" + linkKeys()
	data := randomBytes(1<<20 + 3)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "-name", "shared")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var serveErr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"serve", be, keys, "-listen", "127.0.0.1:0", "-json"}, strings.NewReader(""), pw, &serveErr)
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	var hello struct{ Listen, URL string }
	var buf strings.Builder
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "}") {
		buf.WriteString(sc.Text())
	}
	buf.WriteString("}")
	if err := json.Unmarshal([]byte(buf.String()), &hello); err != nil || hello.URL == "" {
		t.Fatalf("serve did not announce itself: %q, %v", buf.String(), err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := strings.TrimSuffix(hello.URL, "/")

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}

	link := mustCLI(t, nil, "share", be, keys, "-share-url", base+"/s/", "-ttl", "5m", addr)
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
	// get through the link, with no backend at all, verifies the digest.
	out, errs, code := cli(t, nil, "get", "-trust", base, link)
	if code != 0 || out != string(data) {
		t.Fatalf("get link: exit %d, %d bytes; %s", code, len(out), errs)
	}
	// Without trust, the link is refused and nothing is fetched.
	if out, _, code := cli(t, nil, "get", link); code != exitFailure || out != "" {
		t.Errorf("get of untrusted link: exit %d, %d bytes", code, len(out))
	}
	// Tampered: the signature no longer verifies.
	bad := strings.Replace(link, "exp=", "exp=9", 1)
	if out, errs, code := cli(t, nil, "get", "-trust", base, bad); code != exitFailure || out != "" || !strings.Contains(errs, "refused") {
		t.Errorf("get of tampered link: exit %d, %d bytes, %s", code, len(out), errs)
	}
	var sj struct{ URL string }
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "share", be, keys, "-share-url", base, "-json", addr)), &sj); err != nil || !strings.HasPrefix(sj.URL, base+"/file/") {
		t.Errorf("share -json: %+v %v", sj, err)
	}
	if _, errs, code := cli(t, nil, "share", be, addr); code != exitFailure || !strings.Contains(errs, "-link-keys") {
		t.Errorf("share without keys: exit %d, %s", code, errs)
	}

	// Graceful shutdown on cancel (SIGINT/SIGTERM in main).
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, serveErr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still answering after shutdown")
	}
}

func TestProgress(t *testing.T) {
	be, _ := backend(t)
	data := randomBytes(6 << 20)
	addr := mustCLI(t, bytes.NewReader(data), "put", be)
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, terminal: true}
	if code := a.run(context.Background(), []string{"get", be, addr}); code != 0 {
		t.Fatalf("get: exit %d: %s", code, errb.String())
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("get with progress changed the payload")
	}
	if s := errb.String(); !strings.Contains(s, "100.0% 6.0 MiB / 6.0 MiB") || !strings.HasSuffix(s, "\n") {
		t.Errorf("progress output %q", s)
	}
	// Quiet, or not a terminal: nothing on stderr.
	errb.Reset()
	a.quiet = true
	if code := a.run(context.Background(), []string{"get", be, "-quiet", addr}); code != 0 || errb.Len() != 0 {
		t.Errorf("-quiet: exit %d, stderr %q", code, errb.String())
	}
}
