package natsstash_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An engine over an existing JetStream connection. The example starts an
// embedded server; in production, connect to yours.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "natsstash-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	srv.Start()
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("server not ready")
	}

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	store, err := natsstash.New(js, natsstash.WithBucketPrefix("demo_"))
	if err != nil {
		log.Fatal(err)
	}
	eng, err := stash.New(stash.WithBackend(store), stash.WithNamespace("orders"))
	if err != nil {
		log.Fatal(err)
	}

	s, err := eng.Create(ctx, "invoice", []byte("a payload too large for a message"), stash.NoInline())
	if err != nil {
		log.Fatal(err)
	}
	got, err := eng.Retrieve(ctx, s.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address.Scheme, s.Namespace(), store.BucketName(s.Namespace()))
	fmt.Println(string(got.Data))
	// Output:
	// nats orders demo_orders
	// a payload too large for a message
}
