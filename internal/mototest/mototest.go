// Package mototest starts a real SQS and SNS server for tests: moto's
// server mode (`python -m moto.server`), from the Python test peers'
// virtualenv (package pypeer, built by `make tools`), on a free loopback
// port. It speaks the AWS JSON and query protocols of the current SDKs,
// message attributes, batches, SNS to SQS fan-out with raw delivery and the
// queue attribute MaximumMessageSize.
//
// Without the virtualenv the test is skipped with a one-line reason, or
// failed under CI=true. The server is killed by t.Cleanup, and by the kernel
// if the test binary dies first.
package mototest

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/internal/testproc"
)

// Fixed credentials, region and account of every server Start starts.
const (
	AccessKey = "testing"
	SecretKey = "testing"
	Region    = "us-east-1"
	Account   = "123456789012"
)

// Server is a running moto server.
type Server struct {
	// Endpoint is the base URL, "http://127.0.0.1:<port>".
	Endpoint string

	cmd  *exec.Cmd
	done chan struct{}
	logs *testproc.Output
}

// Start starts a server and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	py := pypeer.Python(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(py)
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("mototest: starting moto: %v", lastErr)
	return nil
}

func start(py string) (*Server, error) {
	hostport, err := testproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(hostport)
	cmd := exec.Command(py, "-m", "moto.server", "-H", "127.0.0.1", "-p", port)
	cmd.Env = append(cmd.Environ(), "AWS_ACCESS_KEY_ID="+AccessKey, "AWS_SECRET_ACCESS_KEY="+SecretKey,
		"AWS_DEFAULT_REGION="+Region, "MOTO_ACCOUNT_ID="+Account)
	testproc.DieWithParent(cmd, false)
	logs := &testproc.Output{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://" + hostport, cmd: cmd, done: make(chan struct{}), logs: logs}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; server output:\n%s", err, logs.String())
	}
	return s, nil
}

func (s *Server) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("moto exited")
		default:
		}
		resp, err := client.Get(s.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("moto not ready in %v", d)
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// Logs returns what the server has printed so far.
func (s *Server) Logs() string { return s.logs.String() }

// Config is an AWS SDK configuration for the server: its endpoint, region
// and static credentials, with retries off so that tests see errors as
// they happen.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// Env is the environment a Python peer needs to reach the server with
// boto3.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKey, "AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_DEFAULT_REGION=" + Region, "SQS_ENDPOINT=" + s.Endpoint}
}
