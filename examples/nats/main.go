// Command nats shows claim-check over NATS JetStream: it publishes a message
// eight times the server's 1 MiB max_payload, stashes it in the JetStream
// object store of the same server (the nats:// backend), and reads it back
// through a consumer, verifying every byte.
//
// With no server URL (-url, or NATS_URL) it starts an embedded nats-server
// with JetStream on a random loopback port, so it runs on a fresh machine:
//
//	go run ./examples/nats
//	go run ./examples/nats -url nats://127.0.0.1:4222 -size 32
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nats example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("NATS_URL"), "NATS server URL (default $NATS_URL; empty: start an embedded server)")
	sizeMiB := fs.Int("size", 8, "message size in MiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sizeMiB < 1 {
		return errors.New("-size must be at least 1")
	}

	if *url == "" {
		srv, stop, err := embedded()
		if err != nil {
			return err
		}
		defer stop()
		*url = srv.ClientURL()
		fmt.Fprintln(out, "started an embedded nats-server with JetStream")
	}
	nc, err := nats.Connect(*url, nats.Name("claimstash-example"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	// The stash lives in the JetStream object store of the same server.
	store, err := natsstash.New(js, natsstash.WithBucketTTL(24*time.Hour))
	if err != nil {
		return err
	}
	engine, err := stash.New(stash.WithBackend(store), stash.WithNamespace("example"))
	if err != nil {
		return err
	}
	defer engine.Close()
	cc, err := claimcheck.New(engine, claimcheck.WithStashOptions(stash.TTL(time.Hour)))
	if err != nil {
		return err
	}
	cjs, err := ccnats.NewJetStream(js, cc)
	if err != nil {
		return err
	}

	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "CLAIMSTASH_EXAMPLE", Subjects: []string{"example.reports"}})
	if err != nil {
		return err
	}
	body := make([]byte, *sizeMiB<<20)
	_, _ = rand.NewChaCha8([32]byte{42}).Read(body)
	sum := sha256.Sum256(body)

	msg := nats.NewMsg("example.reports")
	msg.Header.Set("report-id", "42")
	msg.Data = body
	ack, err := cjs.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	fmt.Fprintf(out, "published %d bytes (server max_payload %d) as stream sequence %d\n", len(body), nc.MaxPayload(), ack.Sequence)

	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy})
	if err != nil {
		return err
	}
	// What crossed the broker: the address and the contract headers.
	wire, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		return err
	}
	addr, size, _, err := claimcheck.Reference(wire.Data(), ccnats.Header(wire.Headers()))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "on the wire: %d bytes, address %s, original size %d\n", len(wire.Data()), addr, size)

	// What the application sees.
	m, err := ccnats.Rehydrate(ctx, cc, wire)
	if err != nil {
		return fmt.Errorf("rehydrate: %w", err)
	}
	if got := sha256.Sum256(m.Data()); !bytes.Equal(got[:], sum[:]) {
		return errors.New("payload differs from what was published")
	}
	fmt.Fprintf(out, "received %d bytes, report-id %s, sha256 verified\n", len(m.Data()), m.Headers().Get("report-id"))
	return nil
}

// embedded starts a nats-server with JetStream on a random loopback port and
// the stock 1 MiB max_payload; stop shuts it down and removes its store.
func embedded() (srv *server.Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", "claimstash-nats-example")
	if err != nil {
		return nil, nil, err
	}
	stop = func() {
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		_ = os.RemoveAll(dir)
	}
	srv, err = server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		stop()
		return nil, nil, errors.New("embedded nats-server did not start")
	}
	return srv, stop, nil
}
