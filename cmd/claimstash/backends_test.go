package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.StopShared()
	os.Exit(code)
}

// isolateAWS points the SDK's default chain at MinIO's credentials and
// away from the machine's files.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
}

// TestS3Backend runs put, get, share and get of the presigned link against
// a real MinIO server: a write into a missing bucket has its own exit
// status, the link share prints is read back with no --trusted-origins,
// and the SDK prints nothing on stderr.
func TestS3Backend(t *testing.T) {
	srv := miniotest.Shared(t)
	isolateAWS(t)
	be := "--backend=s3://?region=" + miniotest.Region + "&endpoint=" + srv.Endpoint + "&path_style=true"
	data := randomBytes(2<<20 + 5)

	_, errs, code := cli(t, bytes.NewReader(data), "put", be, "-n", "no-such-bucket", "--name", "x")
	if code != exitNoTarget {
		t.Errorf("put into a missing bucket: exit %d, want %d; %s", code, exitNoTarget, errs)
	}
	noGoIdentifiers(t, "missing bucket", errs)

	beCreate := be + "&create_buckets=true"
	out, errs, code := cli(t, bytes.NewReader(data), "put", beCreate, "-n", "cli-s3", "--name", "big")
	if code != 0 || errs != "" {
		t.Fatalf("put: exit %d; stderr %q", code, errs)
	}
	addr := strings.TrimSpace(out)
	if got, errs, code := cli(t, nil, "get", be, addr); code != 0 || got != string(data) || errs != "" {
		t.Fatalf("get: exit %d, %d bytes; stderr %q", code, len(got), errs)
	}
	link := mustCLI(t, nil, "share", be, addr)
	if !strings.HasPrefix(link, srv.Endpoint+"/") {
		t.Fatalf("share printed %q, want a presigned link on %s", link, srv.Endpoint)
	}
	// The same settings read the backend's own link, without --trust.
	got, errs, code := cli(t, nil, "get", be, link)
	if code != 0 || got != string(data) || errs != "" {
		t.Fatalf("get of its own presigned link: exit %d, %d bytes; stderr %q", code, len(got), errs)
	}
	// Without the backend, the link's origin is not trusted.
	if _, errs, code := cli(t, nil, "get", link); code != exitRefused {
		t.Errorf("get of a presigned link with no settings: exit %d; %s", code, errs)
	}
	ls := mustCLI(t, nil, "ls", be, "-n", "cli-s3")
	if !strings.Contains(ls, addr) {
		t.Errorf("ls of the bucket:\n%s", ls)
	}
	mustCLI(t, nil, "rm", be, addr)
	if _, _, code := cli(t, nil, "stat", be, addr); code != exitNotFound {
		t.Errorf("stat after rm: exit %d", code)
	}

	// No credentials at all: a plain message, no SDK warnings.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, errs, code = cli(t, nil, "stat", be, addr)
	if code != exitFailure || strings.Contains(errs, "SDK") || strings.Contains(errs, "WARN") || !strings.Contains(errs, "AWS_ACCESS_KEY_ID") {
		t.Errorf("stat without credentials: exit %d; %s", code, errs)
	}
}

// TestNATSBackend runs put, get, ls and rm against an embedded JetStream.
func TestNATSBackend(t *testing.T) {
	srv := natstest.Start(t)
	be := "--backend=" + srv.URL()
	data := randomBytes(3 << 20)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "jet")
	if !strings.HasPrefix(addr, "nats://default/jet.") {
		t.Fatalf("put: %q", addr)
	}
	if got, errs, code := cli(t, nil, "get", be, addr); code != 0 || got != string(data) {
		t.Fatalf("get: exit %d, %d bytes; %s", code, len(got), errs)
	}
	if ls := mustCLI(t, nil, "ls", be); !strings.Contains(ls, addr) {
		t.Errorf("ls:\n%s", ls)
	}
	mustCLI(t, nil, "rm", be, addr)
	if _, _, code := cli(t, nil, "get", be, addr); code != exitNotFound {
		t.Errorf("get after rm: exit %d", code)
	}
}
