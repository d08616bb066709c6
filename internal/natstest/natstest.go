// Package natstest starts an embedded nats-server with JetStream for tests.
//
// Every server listens on 127.0.0.1 on a random port, keeps its JetStream
// data in a directory of its own under t.TempDir(), and is shut down by
// t.Cleanup. Restart stops and starts it again over the same store (on the
// same port when it is still free), for tests that nothing is lost across a
// server restart:
//
//	srv := natstest.Start(t)
//	nc := srv.Connect(t) // closed by t.Cleanup
//	...
//	srv.Restart(t)
//
// The server keeps the defaults of a stock nats-server (1 MiB max_payload,
// headers on); tune them with a configure function passed to Start.
package natstest

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadyTimeout bounds how long Start and Restart wait for the server to
// accept connections.
const ReadyTimeout = 10 * time.Second

// Server is a running embedded nats-server. Its methods are safe for
// concurrent use.
type Server struct {
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// Start starts a JetStream-enabled server on a random loopback port with a
// fresh store directory, waits until it accepts connections, and registers
// its shutdown with t.Cleanup. configure functions, if any, may change the
// options before the start (MaxPayload, say); Host, Port and StoreDir are
// set already. Start fails the test if the server does not come up.
func Start(t testing.TB, configure ...func(*server.Options)) *Server {
	t.Helper()
	opts := server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
		// HTTP monitoring, clustering and leaf nodes stay off.
	}
	for _, c := range configure {
		c(&opts)
	}
	s := &Server{opts: opts}
	srv, err := run(&s.opts)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	s.srv = srv
	// The chosen port is kept for restarts.
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Shutdown)
	return s
}

func run(opts *server.Options) (*server.Server, error) {
	o := *opts // the server keeps a pointer; give each run its own copy
	srv, err := server.NewServer(&o)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("server on %s:%d not ready after %v", o.Host, o.Port, ReadyTimeout)
	}
	if o.JetStream && !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("JetStream did not start (store %s)", o.StoreDir)
	}
	return srv, nil
}

// URL is the client URL, "nats://127.0.0.1:<port>". It changes only if a
// Restart could not get the old port back.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://%s", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
}

// StoreDir is the JetStream store directory, which survives restarts.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// NATSServer is the running server, for what this package does not wrap.
// It is a different value after a Restart.
func (s *Server) NATSServer() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Connect opens a client connection that reconnects forever (so it rides
// out a Restart) and is closed by t.Cleanup. Extra options come after the
// defaults and override them.
func (s *Server) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(s.URL(), all...)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", s.URL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream connects (as Connect) and returns a JetStream context on the
// connection.
func (s *Server) JetStream(t testing.TB, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Connect(t, opts...))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// Restart shuts the server down and starts it again over the same store
// directory, on the same port if it is free (otherwise on a new random
// port: read URL again). Clients from Connect reconnect by themselves when
// the port is unchanged. Restart fails the test if the server does not
// come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
	if !portFree(s.opts.Host, s.opts.Port) {
		s.opts.Port = server.RANDOM_PORT
	}
	srv, err := run(&s.opts)
	if err != nil && s.opts.Port != server.RANDOM_PORT {
		// Lost the port between the probe and the bind: take any.
		s.opts.Port = server.RANDOM_PORT
		srv, err = run(&s.opts)
	}
	if err != nil {
		t.Fatalf("natstest: restart: %v", err)
	}
	s.srv = srv
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// Shutdown stops the server and waits until it has stopped. It is
// idempotent; Start registers it with t.Cleanup.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}
