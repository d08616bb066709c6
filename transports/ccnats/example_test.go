package ccnats_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// embedded starts a nats-server on a random loopback port, with the stock
// 1 MiB max_payload; stop shuts it down and removes its store.
func embedded() (srv *server.Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", "ccnats-example")
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
	srv, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		stop()
		return nil, nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		stop()
		return nil, nil, fmt.Errorf("server not ready")
	}
	return srv, stop, nil
}

func Example() {
	srv, stop, err := embedded()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	defer engine.Close()
	cc, _ := claimcheck.New(engine)
	conn, err := ccnats.NewConn(nc, cc)
	if err != nil {
		fmt.Println(err)
		return
	}

	got := make(chan *nats.Msg, 1)
	sub, _ := conn.Subscribe("reports", func(m *nats.Msg) { got <- m })
	defer sub.Unsubscribe()
	_ = nc.Flush()

	// 4 MiB: four times what the server takes in one message.
	msg := nats.NewMsg("reports")
	msg.Header.Set("report-id", "42")
	msg.Data = make([]byte, 4<<20)
	if err := conn.PublishMsg(context.Background(), msg); err != nil {
		fmt.Println(err)
		return
	}
	m := <-got
	fmt.Println("server max_payload:", nc.MaxPayload())
	fmt.Println("received:", len(m.Data), "bytes, report-id", m.Header.Get("report-id"))
	// Output:
	// server max_payload: 1048576
	// received: 4194304 bytes, report-id 42
}
