package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// runBin runs the built command and returns its trimmed stdout; a non-zero
// exit fails t.
func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("claimstash %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String())
}

// cleanEnv is the environment without CLAIMSTASH_ variables, so that the
// test's settings are the only ones.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLAIMSTASH_") {
			env = append(env, kv)
		}
	}
	return env
}

// served is a claimstash serve process started by startServeBin.
type served struct {
	cmd    *exec.Cmd
	hello  serveJSON
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited
	code   int           // its exit status, once exited is closed
}

// startServeBin starts the built command's serve on a free loopback port and
// waits for its --json announcement.
func startServeBin(t *testing.T, bin string, args ...string) *served {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--json"}, args...)...)
	cmd.Env = cleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hello := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		hello <- json.NewDecoder(br).Decode(&s.hello)
		_, _ = io.Copy(io.Discard, br)
		_ = cmd.Wait()
		s.code = cmd.ProcessState.ExitCode()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case err := <-hello:
		if err != nil || s.hello.URL == "" {
			t.Fatalf("serve did not announce itself: %v; %s", err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start: %s", s.stderr)
	}
	return s
}

func (s *served) base() string { return strings.TrimSuffix(s.hello.URL, "/") }

// wait waits for the process to exit and returns its status.
func (s *served) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.code
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not shut down: %s", s.stderr)
	}
	return -1
}

func httpDo(t *testing.T, method, url, token string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeOfficialPythonClient is the command-line variant of service's
// TestOfficialPythonClient: the keys come from claimstash keygen, the server
// is claimstash serve (a built binary, on a loopback port), the tokens come
// from claimstash token, and objectstore's own Python client (the same
// tests, in service/testdata/python) drives it. Then the binary's own
// objectstore:// backend reads what Python stored, a key capped at reading
// cannot write, and SIGTERM drains (/ready 503) and shuts down cleanly.
func TestServeOfficialPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("python peers take a few seconds; skipped with -short")
	}
	pypeer.Python(t) // skip (fail under CI=true) without the virtualenv
	bin := buildCLI(t)
	keys := t.TempDir()
	var k keyJSON
	if err := json.Unmarshal([]byte(runBin(t, bin, "keygen", "--kind", "objectstore", "--dir", keys, "--json")), &k); err != nil {
		t.Fatal(err)
	}
	if k.Kind != "objectstore" || k.PrivateKey != filepath.Join(keys, k.ID+".key") || k.PublicKey != filepath.Join(keys, k.ID+".pub") {
		t.Fatalf("keygen --json: %+v", k)
	}
	reader := runBin(t, bin, "keygen", "--kind", "objectstore", "--dir", keys, "--kid", "reader", "--max-permissions", "read")
	if !strings.Contains(reader, "kid:         reader") || !strings.Contains(reader, filepath.Join(keys, "reader.permissions")) {
		t.Fatalf("keygen --kid reader:\n%s", reader)
	}

	store := t.TempDir()
	s := startServeBin(t, bin, "--backend=file://"+store+"?create_dir=true&nosync=true", "--auth-keys", keys, "--drain", "2s")
	if s.hello.Auth == nil || !*s.hello.Auth || s.hello.ShareLinks || s.hello.Backend != "file" || s.hello.API != s.hello.URL+"v1/objects/" {
		t.Errorf("serve announced %+v", s.hello)
	}
	base := s.base()

	tok := runBin(t, bin, "token", "--key", k.PrivateKey, "--usecase", "testing", "--scopes", "org=42;project=7", "--lifetime", "10m")
	expiredTok := runBin(t, bin, "token", "--key", k.PrivateKey, "--usecase", "testing", "--scopes", "org=42;project=7", "--lifetime", "1s")
	expires := time.Now().Add(time.Second)
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token printed %q", tok)
	}

	// A stash made by a Go engine through the objectstore backend, zstd
	// compressed, for the Python client to read.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	signer, err := osauth.NewSigner(k.ID, k.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := objectstash.New(base, objectstash.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(backend), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fromGo := bytes.Repeat([]byte("written by a go engine "), 1000)
	made, err := e.Create(ctx, "from-go", fromGo, stash.InNamespace("testing"),
		stash.InScopes(stash.Scope{Key: "org", Value: "42"}, stash.Scope{Key: "project", Value: "7"}),
		stash.Metadata(map[string]string{"source": "go"}), stash.Origin("go-engine"))
	if err != nil {
		t.Fatal(err)
	}
	if made.Encoding != driver.EncodingZstd {
		t.Fatalf("the Go stash is stored %q, want zstd for the round trip", made.Encoding)
	}
	sum := sha256.Sum256(fromGo)

	time.Sleep(time.Until(expires) + 1100*time.Millisecond) // exp is in whole seconds
	out := pypeer.Run(t, ctx, []string{
		"OS_URL=" + base, "OS_KID=" + k.ID, "OS_KEY=" + k.PrivateKey,
		"OS_GO_TOKEN=" + tok, "OS_EXPIRED_TOKEN=" + expiredTok,
		"OS_GO_STASH_KEY=" + made.Address.Name + "." + made.Address.Digest, "OS_GO_STASH_SHA256=" + hex.EncodeToString(sum[:]),
	}, "-m", "pytest", "-q", "-p", "no:cacheprovider", filepath.Join("..", "..", "service", "testdata", "python"))
	t.Logf("%s", out)

	// What the Python client stored, the command line reads back through
	// its objectstore:// backend, verified against the digest in its name.
	fromPy := bytes.Repeat([]byte("written by python "), 500)
	pySum := sha256.Sum256(fromPy)
	addr := "objectstore://testing/org=42/project=7/py-made." + hex.EncodeToString(pySum[:])
	be := "--backend=objectstore://" + strings.TrimPrefix(base, "http://") + "?plaintext=true&kid=" + k.ID + "&key_file=" + k.PrivateKey
	dst := filepath.Join(t.TempDir(), "from-python")
	runBin(t, bin, "get", be, "-o", dst, addr)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, fromPy) {
		t.Errorf("get %s: %d bytes, want %d (%v)", addr, len(got), len(fromPy), err)
	}
	var st stashJSON
	if err := json.Unmarshal([]byte(runBin(t, bin, "stat", be, "--json", addr)), &st); err != nil || st.Metadata["source"] != "python" || st.Size != int64(len(fromPy)) {
		t.Errorf("stat %s: %+v %v", addr, st, err)
	}

	// The reader key's tokens grant what its permissions file allows,
	// whatever they claim.
	rtok := runBin(t, bin, "token", "--key", filepath.Join(keys, "reader.key"), "--usecase", "testing", "--permissions", "all")
	obj := base + "/v1/objects/testing/_/by-reader"
	if code, body := httpDo(t, http.MethodPut, obj, rtok, strings.NewReader("x")); code != http.StatusForbidden {
		t.Errorf("PUT with a read-only key's token: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodGet, obj, rtok, nil); code != http.StatusNotFound {
		t.Errorf("GET with a read-only key's token: %d %s", code, body)
	}
	if code, _ := httpDo(t, http.MethodGet, obj, "", nil); code != http.StatusBadRequest {
		t.Errorf("GET without a token: %d", code)
	}
	if code, body := httpDo(t, http.MethodGet, base+"/healthz", "", nil); code != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := httpDo(t, http.MethodGet, base+"/ready", "", nil); code != 200 {
		t.Errorf("/ready before shutdown: %d", code)
	}

	// SIGTERM: /ready answers 503 for the drain while requests are still
	// served, then serve exits 0.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(time.Second)
	ready := 0
	for time.Now().Before(deadline) {
		if ready, _ = httpDo(t, http.MethodGet, base+"/ready", "", nil); ready == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ready != http.StatusServiceUnavailable {
		t.Errorf("/ready while draining: %d, want 503", ready)
	}
	if code, _ := httpDo(t, http.MethodGet, base+"/health", "", nil); code != 200 {
		t.Errorf("/health while draining: %d", code)
	}
	if code := s.wait(t); code != 0 {
		t.Errorf("serve exit %d: %s", code, s.stderr)
	}
	log := s.stderr.String()
	if !strings.Contains(log, `"msg":"shut down"`) || !strings.Contains(log, `"path":"/v1/objects/testing/org=42;project=7/greeting"`) {
		t.Errorf("serve's log:\n%s", log)
	}
	if strings.Contains(log, "os_sig") || strings.Contains(log, tok) {
		t.Errorf("serve's log holds a signature or a token:\n%s", log)
	}
}

// TestKeygenObjectstoreAndToken checks keygen --kind objectstore's files
// and token's claims in-process.
func TestKeygenObjectstoreAndToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out := mustCLI(t, nil, "keygen", "--kind", "objectstore", "--dir", dir, "--kid", "relay", "--max-permissions", "read,write")
	for _, want := range []string{"kid:         relay", filepath.Join(dir, "relay.key"), filepath.Join(dir, "relay.pub"), "object.read, object.write"} {
		if !strings.Contains(out, want) {
			t.Errorf("keygen output lacks %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "relay.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key: %v %v", fi, err)
	}
	keys, err := osauth.OpenKeyDir(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := keys.PublicKey("relay")
	if !ok || len(pub.MaxPermissions) != 2 {
		t.Fatalf("key directory: %+v %v", pub, ok)
	}
	// Existing keys are never replaced.
	before, _ := os.ReadFile(filepath.Join(dir, "relay.key"))
	for _, args := range [][]string{{}, {"--max-permissions", "read"}} {
		_, errs, code := cli(t, nil, append([]string{"keygen", "--kind", "objectstore", "--dir", dir, "--kid", "relay"}, args...)...)
		if code != exitUsage || !strings.Contains(errs, "already") {
			t.Errorf("keygen %v over an existing key: exit %d, %s", args, code, errs)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "relay.key")); !bytes.Equal(before, after) || len(after) == 0 {
		t.Error("keygen replaced an existing key")
	}
	if again, err := osauth.OpenKeyDir(dir, -1); err != nil {
		t.Error(err)
	} else if pub, ok := again.PublicKey("relay"); !ok || len(pub.MaxPermissions) != 2 {
		t.Errorf("the existing key's permissions changed: %+v", pub)
	}
	var kj keyJSON
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "keygen", "--kind", "objectstore", "--dir", dir, "--json")), &kj); err != nil ||
		kj.Kind != "objectstore" || osauth.ValidKid(kj.ID) != nil || kj.Secret != "" || kj.PermissionsFile != "" {
		t.Errorf("keygen --json: %+v %v", kj, err)
	}
	for _, args := range [][]string{
		{"keygen", "--dir", dir}, // a link key is printed, not written
		{"keygen", "--kind", "objectstore", "--dir", dir, "--kid", "../up"},
		{"keygen", "--kind", "objectstore", "--dir", dir, "--max-permissions", "admin"},
	} {
		if _, errs, code := cli(t, nil, args...); code != exitUsage {
			t.Errorf("claimstash %v: exit %d, want %d; %s", args, code, exitUsage, errs)
		} else {
			noGoIdentifiers(t, strings.Join(args, " "), errs)
		}
	}

	key := filepath.Join(dir, "relay.key")
	tok := mustCLI(t, nil, "token", "--key", key, "--usecase", "attachments", "--scopes", "org=42;project=*", "--permissions", "read", "--lifetime", "10m")
	v := osauth.NewVerifier(keys)
	req := osauth.Request{Usecase: "attachments", Scopes: []osauth.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "9"}}, Permission: osauth.Read}
	if err := v.VerifyToken(tok, req); err != nil {
		t.Errorf("token does not verify: %v", err)
	}
	req.Permission = osauth.Write
	if err := v.VerifyToken(tok, req); err == nil {
		t.Error("a read token allows writing")
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil || time.Until(exp.Time) < 9*time.Minute || time.Until(exp.Time) > 11*time.Minute {
		t.Errorf("token expiry %v", exp)
	}
	var tj tokenJSON
	if err := json.Unmarshal([]byte(mustCLI(t, nil, "token", "--key", key, "--usecase", "attachments", "--json")), &tj); err != nil ||
		tj.Kid != "relay" || tj.Scopes != "_" || len(tj.Permissions) != 3 || time.Until(tj.ExpiresAt) < 59*time.Minute {
		t.Errorf("token --json: %+v %v", tj, err)
	}
	for _, args := range [][]string{
		{"token", "--usecase", "attachments"},
		{"token", "--key", key},
		{"token", "--key", key, "--usecase", "attachments", "--scopes", "org=4.2"},
		{"token", "--key", key, "--usecase", "attachments", "--permissions", "admin"},
		{"token", "--key", key, "--usecase", "attachments", "--lifetime", "-1m"},
		{"token", "--key", filepath.Join(dir, "missing.key"), "--usecase", "attachments"},
	} {
		if _, errs, code := cli(t, nil, args...); code != exitUsage {
			t.Errorf("claimstash %v: exit %d, want %d; %s", args, code, exitUsage, errs)
		} else {
			noGoIdentifiers(t, strings.Join(args, " "), errs)
		}
	}
}

// TestServeRefusesWithoutAuth checks that serve does not start an
// unauthenticated API by accident, nor with contradictory settings.
func TestServeRefusesWithoutAuth(t *testing.T) {
	be, _ := backend(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", be}, "--auth-keys"},
		{[]string{"serve", be, "--no-auth", "--auth-keys", t.TempDir()}, "--no-auth"},
		{[]string{"serve", be, "--auth-keys", t.TempDir()}, "--auth-keys"}, // no keys in it
		{[]string{"serve", be, "--no-auth", "--api-backend", "s3"}, "--api-backend"},
		{[]string{"serve", be, "--no-auth", "--max-body", "-1"}, "--max-body"},
		{[]string{"serve", be, "--no-api"}, "--link-keys"},
		{[]string{"serve", be, "--no-api", "--no-auth", "--link-keys", linkKeys()}, "--no-api"},
	} {
		_, errs, code := cli(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("claimstash %v: exit %d, want %d naming %s; %s", c.args, code, exitUsage, c.want, errs)
		}
		noGoIdentifiers(t, strings.Join(c.args, " "), errs)
	}
}

// TestServeSecondSignal checks that serve's graceful shutdown is not cut
// short by the first signal, and that a second one ends it at once.
func TestServeSecondSignal(t *testing.T) {
	bin := buildCLI(t)
	s := startServeBin(t, bin, "--backend=mem://", "--no-auth", "--drain", "1m")
	if s.hello.Auth == nil || *s.hello.Auth {
		t.Errorf("--no-auth announced auth: %+v", s.hello)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(3500 * time.Millisecond) // past the 3 s after which other commands are ended
	if code, _ := httpDo(t, http.MethodGet, s.base()+"/ready", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/ready while draining: %d, want 503", code)
	}
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.wait(t); code != 143 || time.Since(start) > 5*time.Second {
		t.Errorf("second SIGTERM: exit %d after %v, want 143 at once", code, time.Since(start))
	}
	if !strings.Contains(s.stderr.String(), "WITHOUT authentication") {
		t.Errorf("no warning about --no-auth:\n%s", s.stderr)
	}
}

// TestServeShareLinksOnly checks that --no-api serves share links, /health
// and /ready, and no API.
func TestServeShareLinksOnly(t *testing.T) {
	be, _ := backend(t)
	keys := "--link-keys=" + linkKeys()
	data := randomBytes(5000)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--no-inline")
	hello, stop := startServeHello(t, be, keys, "--no-api")
	base := strings.TrimSuffix(hello.URL, "/")
	if hello.API != "" || hello.Backend != "" || hello.Auth != nil || !hello.ShareLinks {
		t.Errorf("serve --no-api announced %+v; want no api, backend or auth, and share links", hello)
	}
	link := mustCLI(t, nil, "share", be, keys, "--share-url", base+"/", addr)
	if code, body := httpDo(t, http.MethodGet, link, "", nil); code != 200 || !bytes.Equal(body, data) {
		t.Errorf("share link: %d, %d bytes", code, len(body))
	}
	for _, path := range []string{"/health", "/ready", "/healthz"} {
		if code, _ := httpDo(t, http.MethodGet, base+path, "", nil); code != 200 {
			t.Errorf("GET %s: %d, want 200", path, code)
		}
	}
	// The API's paths reach the share-link handler, which refuses them as
	// unsigned links; nothing is written.
	for _, path := range []string{"/v1/objects/default/_/x", "/v1/objects:batch/default/_/"} {
		if code, body := httpDo(t, http.MethodPut, base+path, "", strings.NewReader("x")); code != http.StatusForbidden && code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("PUT %s with --no-api: %d %s", path, code, body)
		}
	}
	if out := mustCLI(t, nil, "ls", be, "--json"); strings.Count(out, "\n") != 0 || !strings.Contains(out, addr) {
		t.Errorf("the backend holds more than the one stash:\n%s", out)
	}
	if code, log := stop(); code != 0 || strings.Contains(log, "WITHOUT authentication") {
		t.Errorf("serve --no-api: exit %d\n%s", code, log)
	}
}
