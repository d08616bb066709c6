package ccnats_test

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// An existing nats.go pipeline changes in one line: the connection is
// wrapped, and every call after it is nats.go's own.
func ExampleWrapConn() {
	srv, stop, err := embedded()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	defer engine.Close()
	cc, _ := claimcheck.New(engine)

	raw, err := nats.Connect(srv.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer raw.Close()
	nc, err := ccnats.WrapConn(raw, cc) // the one new line
	if err != nil {
		fmt.Println(err)
		return
	}

	sub, _ := nc.SubscribeSync("reports")
	defer sub.Unsubscribe()
	_ = nc.Publish("reports", make([]byte, 4<<20)) // four times max_payload
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("received:", len(m.Data), "bytes")

	js, _ := nc.JetStream()
	_, _ = js.AddStream(&nats.StreamConfig{Name: "REPORTS", Subjects: []string{"archive.>"}})
	_, _ = js.Publish("archive.42", make([]byte, 3<<20))
	pull, _ := js.PullSubscribe("archive.>", "archiver")
	msgs, _ := pull.Fetch(1, nats.MaxWait(10*time.Second))
	for _, m := range msgs {
		fmt.Println("fetched:", len(m.Data), "bytes")
		_ = m.Ack()
	}
	// Output:
	// received: 4194304 bytes
	// fetched: 3145728 bytes
}
