package s3stash_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/claimstash/claimstash/stash/s3stash"
)

// TestSDKLogsNotOnStderr: off EC2, looking for credentials the SDK warns
// that it falls back to IMDSv1; that warning goes to slog at debug level,
// never to the standard error of the program that uses the backend.
func TestSDKLogsNotOnStderr(t *testing.T) {
	// An instance metadata service on loopback that refuses tokens (404),
	// as the SDK sees one that only speaks IMDSv1, and has no role.
	var tokenAsked atomic.Bool
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/api/token" {
			tokenAsked.Store(true)
		}
		http.NotFound(w, r)
	}))
	defer imds.Close()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL, "AWS_EC2_METADATA_DISABLED": "",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_REGION": "us-east-1",
	} {
		t.Setenv(k, v)
	}
	var logged bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	// The SDK's default logger writes to os.Stderr as it is when the
	// configuration is loaded: catch it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	restored := false
	restore := func() {
		if !restored {
			restored = true
			os.Stderr = stderr
			w.Close()
		}
	}
	defer restore()
	caught := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); caught <- b }()

	st, err := s3stash.Open(context.Background(), s3stash.WithEndpoint("http://127.0.0.1:1"), s3stash.PathStyle())
	if err != nil {
		restore()
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Client().Options().Credentials.Retrieve(context.Background()); err == nil {
		t.Error("credentials found where there are none")
	}
	restore()
	if out := <-caught; len(out) != 0 {
		t.Errorf("the SDK wrote on stderr: %s", out)
	}
	if !tokenAsked.Load() {
		t.Fatal("the SDK never asked the metadata service: the test proves nothing")
	}
	if log := logged.String(); !strings.Contains(log, "level=DEBUG") || !strings.Contains(log, "IMDSv1") {
		t.Errorf("the SDK's warning is not in the debug log: %q", log)
	}
}
