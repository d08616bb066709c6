package ccsarama_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// printer prints each message it is given and marks it; done is closed
// after the first.
type printer struct{ done chan struct{} }

func (printer) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (printer) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (p printer) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		fmt.Printf("received %d bytes, key %s, claim-checked %v\n", len(m.Value), m.Key, ccsarama.IsClaimChecked(m))
		sess.MarkMessage(m, "")
		close(p.done)
		return nil
	}
	return nil
}

func Example() {
	// A Kafka broker (in-process here) whose topics keep the 1 MiB limit.
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "reports"))
	if err != nil {
		log.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()

	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	defer engine.Close()
	checker, _ := claimcheck.New(engine)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest

	raw, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		log.Fatal(err)
	}
	producer, err := ccsarama.WrapSyncProducer(cfg, raw, checker)
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	msg := &sarama.ProducerMessage{Topic: "reports", Key: sarama.StringEncoder("q3"), Value: sarama.ByteEncoder(make([]byte, 8<<20))}
	if _, _, err := producer.SendMessage(msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent as a claim check:", claimcheck.IsClaimChecked(ccsarama.ProducerHeaders(msg)))

	group, err := sarama.NewConsumerGroup(addrs, "example", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer group.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := printer{done: make(chan struct{})}
	go func() { <-h.done; cancel() }()
	if err := group.Consume(ctx, []string{"reports"}, ccsarama.WrapConsumerGroupHandler(h, checker)); err != nil {
		log.Fatal(err)
	}
	// Output:
	// sent as a claim check: true
	// received 8388608 bytes, key q3, claim-checked false
}

// With the checker's DeleteAfterAck, a marked message's stash is deleted
// once the offset past it is committed, and WithCommitCheck reads the
// commit back first, so that a commit that failed deletes nothing.
func ExampleWithCommitCheck() {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "invoices"))
	if err != nil {
		log.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()

	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	defer engine.Close()
	checker, _ := claimcheck.New(engine, claimcheck.DeleteAfterAck())

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest

	raw, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		log.Fatal(err)
	}
	producer, err := ccsarama.WrapSyncProducer(cfg, raw, checker)
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	msg := &sarama.ProducerMessage{Topic: "invoices", Value: sarama.ByteEncoder(make([]byte, 2<<20))}
	if _, _, err := producer.SendMessage(msg); err != nil {
		log.Fatal(err)
	}
	address, _ := msg.Value.Encode()

	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		log.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close() // closes client too
	group, err := sarama.NewConsumerGroupFromClient("billing", client)
	if err != nil {
		log.Fatal(err)
	}
	defer group.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := printer{done: make(chan struct{})}
	go func() { <-h.done; cancel() }()
	handler := ccsarama.WrapConsumerGroupHandler(h, checker, ccsarama.WithCommitCheck(admin, "billing"))
	if err := group.Consume(ctx, []string{"invoices"}, handler); err != nil {
		log.Fatal(err)
	}
	_, err = engine.Stat(context.Background(), string(address))
	fmt.Println("stash deleted:", errors.Is(err, stash.ErrNotFound))
	// Output:
	// received 2097152 bytes, key , claim-checked false
	// stash deleted: true
}
