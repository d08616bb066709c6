package natstest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStartRestartKeepsStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	url := srv.URL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("URL = %q, want nats://127.0.0.1:<port>", url)
	}
	js := srv.JetStream(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("before restart")); err != nil {
		t.Fatal(err)
	}

	srv.Restart(t)
	if srv.URL() != url {
		t.Logf("port changed on restart: %s -> %s", url, srv.URL())
	}
	// The connection from before the restart reconnects by itself when the
	// port is unchanged; a fresh one works either way.
	js2 := srv.JetStream(t)
	s, err := js2.Stream(ctx, "S")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message after restart: %v", err)
	}
	if string(m.Data) != "before restart" {
		t.Fatalf("data = %q", m.Data)
	}
	if srv.URL() == url {
		if _, err := js.Publish(ctx, "s.2", []byte("old connection")); err != nil {
			t.Fatalf("old connection after restart: %v", err)
		}
	}
}

func TestConfigureAndShutdown(t *testing.T) {
	srv := natstest.Start(t, func(o *server.Options) { o.MaxPayload = 2 << 20 })
	nc := srv.Connect(t)
	if got := nc.MaxPayload(); got != 2<<20 {
		t.Fatalf("MaxPayload = %d, want %d", got, 2<<20)
	}
	srv.Shutdown()
	srv.Shutdown() // idempotent
	if srv.NATSServer() != nil {
		t.Fatal("server still set after Shutdown")
	}
}

func TestDefaultMaxPayload(t *testing.T) {
	srv := natstest.Start(t)
	if got := srv.Connect(t).MaxPayload(); got != 1<<20 {
		t.Fatalf("MaxPayload = %d, want the stock 1 MiB", got)
	}
}
