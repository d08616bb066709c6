// Package miniotest starts a real MinIO server for tests: a `minio server`
// process on a free loopback port (127.0.0.1 only) with a temporary data
// directory and fixed root credentials, stopped by t.Cleanup.
//
// The binary is not a Go library: `make tools` builds it into
// <module root>/.tools/bin/minio (or $CLAIMSTASH_TOOLS/bin/minio). When it is
// missing, Start skips the test with a one-line reason, except under CI=true,
// where it fails the test: a suite that silently skips in CI is a trap.
package miniotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claimstash/claimstash/internal/testproc"
)

// Fixed root credentials and region of every server Start starts.
const (
	AccessKey = "claimstash-test"
	SecretKey = "claimstash-test-secret"
	Region    = "us-east-1"
)

// readyTimeout bounds how long Start and Restart wait for ReadyPath.
const readyTimeout = 30 * time.Second

// Server is a running MinIO server.
type Server struct {
	// Endpoint is the base URL, "http://127.0.0.1:<port>".
	Endpoint string
	// Addr is the listen address, "127.0.0.1:<port>".
	Addr string
	// DataDir is where the server keeps its objects; it survives Restart
	// and is removed by Stop.
	DataDir string

	binary string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *testproc.Output
}

// Binary returns the path of the minio binary the tests use and whether it
// exists: $CLAIMSTASH_TOOLS/bin/minio, or <module root>/.tools/bin/minio.
func Binary() (string, bool) {
	path, ok := testproc.ToolsPath("bin", "minio")
	if !ok {
		return "", false
	}
	fi, err := os.Stat(path)
	return path, err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start starts a MinIO server with the given buckets already created, or
// skips (fails under CI=true) if the binary has not been built. t.Cleanup
// stops it.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	s := launch(t)
	t.Cleanup(s.Stop)
	for _, b := range buckets {
		s.CreateBucket(t, b)
	}
	return s
}

var shared struct {
	mu  sync.Mutex
	srv *Server
}

// Shared returns one server for the whole test binary, started by the first
// call (skipping or failing t as Start does). Tests that share it use
// buckets or key prefixes of their own. Call StopShared from TestMain after
// m.Run:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		miniotest.StopShared()
//		os.Exit(code)
//	}
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		shared.srv = launch(t)
	}
	return shared.srv
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.Stop()
		shared.srv = nil
	}
}

func launch(t testing.TB) *Server {
	t.Helper()
	bin, ok := Binary()
	if !ok {
		msg := fmt.Sprintf("miniotest: minio binary not found at %q: run `make tools`", bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "miniotest-")
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	s := &Server{binary: bin, DataDir: dir}
	for attempt := 0; attempt < 3; attempt++ {
		if s.Addr, err = testproc.FreeAddr(); err != nil {
			continue
		}
		s.Endpoint = "http://" + s.Addr
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("miniotest: starting minio: %v", err)
	}
	return s
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	console, err := testproc.FreeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(s.binary, "server", "--quiet", "--address", s.Addr, "--console-address", console, s.DataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	testproc.DieWithParent(cmd, false)
	logs := &testproc.Output{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.logs = cmd, done, logs
	if err := waitReady(s.Endpoint, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		s.cmd = nil
		return fmt.Errorf("%w; server output:\n%s", err, logs.String())
	}
	return nil
}

// ReadyPath is the health endpoint Start and Restart wait for. MinIO's
// /minio/health/live and /minio/health/ready answer 200 as soon as the HTTP
// listener is up, before the object layer, bucket metadata and IAM are
// initialised (they only add "X-Minio-Server-Status: offline"); S3 requests
// get 503 ServiceUnavailable in that window, which lasts about 100 ms on a
// loaded machine. /minio/health/cluster answers 200 only once all three
// are ready and the drives have write quorum.
const ReadyPath = "/minio/health/cluster"

func waitReady(endpoint string, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("minio exited before it was ready")
		default:
		}
		resp, err := client.Get(endpoint + ReadyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", ReadyPath, resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready on %s after %v: %v", endpoint, readyTimeout, last)
}

// Stop kills the server, waits for it to exit and removes its data. It is
// idempotent.
func (s *Server) Stop() {
	s.kill()
	os.RemoveAll(s.DataDir)
}

func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Kill kills the server as a crash would, keeping its data for Restart.
func (s *Server) Kill() { s.kill() }

// Restart kills the server if it runs and starts it again on the same
// address over the same data, failing t if it does not come back. Like
// Start, it returns once the server serves S3 requests (see ReadyPath).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ { // the port may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("miniotest: restarting minio: %v", err)
}

// Logs returns what the server has printed so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// Client returns an S3 client for the server with the root credentials,
// path-style addressing and the SDK's default retries.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// CreateBucket creates a bucket, failing the test on error.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("miniotest: creating bucket %q: %v", name, err)
	}
}

// PID returns the process id of the running server, or 0 when it is
// stopped. Benchmarks read the server's CPU time from it.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Port returns the server's TCP port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
