// Command quickstart sends a 1.1 MB message through a Watermill Go channel
// with claimstash: the body goes to a stash in a local directory, the
// message carries its address, and the subscriber gets the bytes back.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash"
	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "claimstash-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The engine over a file backend and the claim checker, in one call.
	cc, err := claimstash.Open(ctx, "file://"+dir, claimstash.WithCheckerOptions(claimcheck.WithThreshold(256<<10)))
	if err != nil {
		return err
	}
	defer cc.Engine().Close()

	broker := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	pub := ccwatermill.NewPublisher(broker, cc)  // offloads bodies over the threshold
	sub := ccwatermill.NewSubscriber(broker, cc) // rehydrates them before delivery
	defer sub.Close()

	msgs, err := sub.Subscribe(ctx, "orders")
	if err != nil {
		return err
	}
	body := bytes.Repeat([]byte("order line\n"), 100_000)
	msg := message.NewMessage(watermill.NewUUID(), body)
	if err := pub.Publish("orders", msg); err != nil {
		return err
	}
	// The publisher edits the message in place: its payload is the address.
	fmt.Fprintf(out, "sent %d bytes as %s\n", len(body), msg.Payload)

	select {
	case got := <-msgs:
		got.Ack()
		fmt.Fprintf(out, "received %d bytes, intact: %v\n", len(got.Payload), bytes.Equal(got.Payload, body))
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no message received")
	}
	return nil
}
