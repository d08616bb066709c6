package ccwatermill_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// A router whose handlers see the whole payload while only an address
// crosses the broker.
func Example() {
	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	checker, _ := claimcheck.New(engine) // offload above 256 KiB

	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, _ := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	router.AddPublisherDecorators(ccwatermill.PublisherDecorator(checker))
	router.AddSubscriberDecorators(ccwatermill.SubscriberDecorator(checker))

	done := make(chan struct{})
	router.AddConsumerHandler("print", "reports", pubSub, func(msg *message.Message) error {
		fmt.Println("handler got", len(msg.Payload), "bytes, author", msg.Metadata.Get("author"))
		close(done)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	// Outside a router, wrap the publisher by hand.
	publisher := ccwatermill.NewPublisher(pubSub, checker)
	msg := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("report "), 1<<20))
	msg.Metadata.Set("author", "ada")
	if err := publisher.Publish("reports", msg); err != nil {
		panic(err)
	}
	<-done
	fmt.Println("on the wire:", len(msg.Payload) < 200, msg.Metadata.Get(claimcheck.HeaderSize))
	_ = router.Close()
	_ = pubSub.Close()
	// Output:
	// handler got 7340032 bytes, author ada
	// on the wire: true 7340032
}
