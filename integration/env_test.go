package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/testcontainers/testcontainers-go"
	tcminio "github.com/testcontainers/testcontainers-go/modules/minio"
	tcnats "github.com/testcontainers/testcontainers-go/modules/nats"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/internal/kafkabroker"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
)

// The "containers" mode's images are docker-compose.yml's, read from .env
// (images_test.go). Kafka and NATS keep their stock 1 MiB message limits,
// as kfake, Apache Kafka and the embedded nats-server do here.

// env is what a scenario runs against: a Kafka cluster, a NATS server with
// JetStream and an S3 store, with their addresses. Each scenario gets
// servers of its own.
type env struct {
	Mode    string // "local" or "containers"
	Kafka   []string
	NATSURL string
	S3      s3Server

	// KillS3 crashes the S3 server, keeping its data; RestartS3 brings it
	// back on the same endpoint and waits until it serves S3 requests.
	KillS3    func(t *testing.T)
	RestartS3 func(t *testing.T)
}

type s3Server struct {
	Endpoint             string // http://host:port
	AccessKey, SecretKey string
	Region               string
}

// scenario runs one scenario in both modes: "local" against the servers
// the test starts in-process or as child processes (kfake, an embedded
// nats-server, the MinIO binary of `make tools`), and "containers" against
// Kafka, NATS and MinIO containers, which skips with a one-line reason when
// no Docker engine is reachable.
func scenario(t *testing.T, run func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("local", func(t *testing.T) { run(t, startLocal(t)) })
	t.Run("containers", func(t *testing.T) { run(t, startContainers(t)) })
}

// kafkaScenario runs a scenario that goes through Kafka in three modes:
// "kfake" and "kafka" are the local mode, over kfake and over the Apache
// Kafka broker the test binary shares (kafkabroker.Shared; scenarios use
// topics and groups of their own), and "containers" is as in scenario.
func kafkaScenario(t *testing.T, run func(t *testing.T, e *env)) {
	t.Helper()
	t.Run(kafkatest.KfakeName, func(t *testing.T) {
		kc := kafkatest.Start(t, 1, kfake.GroupMinSessionTimeout(100*time.Millisecond))
		run(t, startLocalOn(t, kafkatest.KfakeName, kc.Addrs))
	})
	t.Run(kafkatest.KafkaName, func(t *testing.T) {
		run(t, startLocalOn(t, kafkatest.KafkaName, kafkabroker.Shared(t).Addrs))
	})
	t.Run("containers", func(t *testing.T) { run(t, startContainers(t)) })
}

// startLocal starts the local mode's servers with kfake as the Kafka.
func startLocal(t *testing.T) *env {
	t.Helper()
	kc := kafkatest.Start(t, 1, kfake.GroupMinSessionTimeout(100*time.Millisecond))
	return startLocalOn(t, "local", kc.Addrs)
}

// startLocalOn starts an embedded nats-server and MinIO beside the Kafka
// at brokers.
func startLocalOn(t *testing.T, mode string, brokers []string) *env {
	t.Helper()
	ns := natstest.Start(t)
	ms := miniotest.Start(t)
	return &env{
		Mode:    mode,
		Kafka:   brokers,
		NATSURL: ns.URL(),
		S3: s3Server{
			Endpoint:  ms.Endpoint,
			AccessKey: miniotest.AccessKey,
			SecretKey: miniotest.SecretKey,
			Region:    miniotest.Region,
		},
		KillS3:    func(*testing.T) { ms.Kill() },
		RestartS3: func(t *testing.T) { ms.Restart(t) },
	}
}

func startContainers(t *testing.T) *env {
	t.Helper()
	testcontainers.SkipIfProviderIsNotHealthy(t)
	if testing.Short() {
		t.Skip("containers: skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	kc, brokers, err := runApacheKafka(ctx, image(t, kafkaImageVar))
	testcontainers.CleanupContainer(t, kc)
	if err != nil {
		t.Fatalf("containers: kafka: %v", err)
	}

	nc, err := tcnats.Run(ctx, image(t, natsImageVar)) // the module starts it with -js
	testcontainers.CleanupContainer(t, nc)
	if err != nil {
		t.Fatalf("containers: nats: %v", err)
	}
	natsURL, err := nc.ConnectionString(ctx)
	if err != nil {
		t.Fatalf("containers: nats url: %v", err)
	}

	mc, err := tcminio.Run(ctx, image(t, minioImageVar),
		tcminio.WithUsername(miniotest.AccessKey), tcminio.WithPassword(miniotest.SecretKey))
	testcontainers.CleanupContainer(t, mc)
	if err != nil {
		t.Fatalf("containers: minio: %v", err)
	}
	// Docker maps a new host port when a stopped container starts again;
	// a proxy on a fixed local port keeps the S3 endpoint stable across
	// KillS3 and RestartS3.
	proxy := startProxy(t, func(ctx context.Context) (string, error) { return mc.ConnectionString(ctx) })
	e := &env{
		Mode:    "containers",
		Kafka:   brokers,
		NATSURL: natsURL,
		S3: s3Server{
			Endpoint:  "http://" + proxy.Addr(),
			AccessKey: miniotest.AccessKey,
			SecretKey: miniotest.SecretKey,
			Region:    miniotest.Region,
		},
	}
	e.KillS3 = func(t *testing.T) {
		t.Helper()
		zero := time.Duration(0) // SIGKILL at once, as a crash would
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := mc.Stop(ctx, &zero); err != nil {
			t.Fatalf("containers: stopping minio: %v", err)
		}
		proxy.DropAll()
	}
	e.RestartS3 = func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := mc.Start(ctx); err != nil {
			t.Fatalf("containers: starting minio: %v", err)
		}
		// Not /minio/health/live: it says 200 before MinIO serves S3.
		waitHTTP(t, e.S3.Endpoint+miniotest.ReadyPath, time.Minute)
	}
	return e
}

// s3Client returns a client of the env's S3 server with at most attempts
// attempts per request (0: the SDK's default, 3).
func (e *env) s3Client(attempts int) *s3.Client {
	return s3.New(s3.Options{
		Region:           e.S3.Region,
		BaseEndpoint:     aws.String(e.S3.Endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(e.S3.AccessKey, e.S3.SecretKey, ""),
		RetryMaxAttempts: attempts,
	})
}

// createBucket creates a bucket on the env's S3 server.
func (e *env) createBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.s3Client(0).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proxy forwards TCP connections from a fixed loopback port to an address
// looked up for each connection.
type proxy struct {
	l      net.Listener
	target func(context.Context) (string, error)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startProxy(t testing.TB, target func(context.Context) (string, error)) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	addr, err := p.target(ctx)
	var up net.Conn
	if err == nil {
		up, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	cancel()
	if err != nil {
		return // the client sees its connection closed, as with a dead server
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// DropAll closes every connection in flight.
func (p *proxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops accepting, drops every connection and waits for the
// forwarding goroutines.
func (p *proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.l.Close()
	p.DropAll()
	p.wg.Wait()
}

// TestMain stops the servers shared by the tests and benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.StopShared()
	kafkabroker.StopShared()
	stopBenchKafka()
	os.Exit(code)
}
