package service_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// TestHelperServe is not a test: TestBigObjectRSS runs the test binary
// again with CLAIMSTASH_SERVICE_HELPER set, so the server has a process of
// its own whose memory can be measured. It serves until its stdin closes.
func TestHelperServe(t *testing.T) {
	dir := os.Getenv("CLAIMSTASH_SERVICE_HELPER")
	if dir == "" {
		t.Skip("helper process for TestBigObjectRSS")
	}
	fs, err := filestash.New(dir) // fsync on
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.New(fs, service.WithoutAuth(), service.WithTempDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	if err := service.Serve(ctx, ln, s, s, service.WithDrainDelay(time.Millisecond), service.WithShutdownTimeout(time.Second)); err != nil {
		t.Fatal(err)
	}
}

// stream is n deterministic pseudo-random bytes, never all in memory.
type stream struct {
	r *rand.ChaCha8
	n int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	_, _ = s.r.Read(p)
	s.n -= int64(len(p))
	return len(p), nil
}

func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to measure memory: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestBigObjectRSS puts and gets a 1 GiB object through a server in its own
// process, through the objectstore backend and with a chunked PUT (spooled),
// and checks the server's peak RSS stays under 64 MiB. It writes 3 GiB to
// disk, so it runs only with CLAIMSTASH_BIG=1.
func TestBigObjectRSS(t *testing.T) {
	if os.Getenv("CLAIMSTASH_BIG") != "1" {
		t.Skip("set CLAIMSTASH_BIG=1 to put and get 1 GiB through a server process")
	}
	const size = 1 << 30
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), "CLAIMSTASH_SERVICE_HELPER="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	d, err := objectstash.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "huge." + strings.Repeat("ab", 32)
	want := sha256.New()
	t0 := time.Now()
	src := io.TeeReader(&stream{r: rand.NewChaCha8([32]byte{1}), n: size}, want)
	if err := d.Put(ctx, "big", key, src, size, &driver.Attributes{Size: size, StoredSize: size}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	putTime := time.Since(t0)
	t0 = time.Now()
	rc, _, err := d.Get(ctx, "big", key)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("Get: %d bytes, %v, digest match %v", n, err, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	getTime := time.Since(t0)
	// A body without Content-Length is spooled to a file, not to memory.
	req, _ := http.NewRequest("PUT", "http://"+addr+"/v1/objects/big/_/chunked", &stream{r: rand.NewChaCha8([32]byte{2}), n: size})
	req.ContentLength = -1
	t0 = time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chunked PUT: %s", resp.Status)
	}
	chunkedTime := time.Since(t0)
	rss := peakRSS(t, cmd.Process.Pid)
	t.Logf("1 GiB: PUT %v (%.0f MB/s), GET %v (%.0f MB/s), chunked PUT %v; server peak RSS %.1f MiB",
		putTime.Round(time.Millisecond), size/putTime.Seconds()/1e6, getTime.Round(time.Millisecond), size/getTime.Seconds()/1e6,
		chunkedTime.Round(time.Millisecond), float64(rss)/(1<<20))
	if rss >= 64<<20 {
		t.Fatalf("server peak RSS %d MiB, want under 64", rss>>20)
	}
}
