package ccsarama_test

import (
	"fmt"
	"log"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// A plain sarama consumer changes in one line: the consumer is wrapped, and
// its partition consumers deliver payloads, not claim checks.
func ExampleWrapConsumer() {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "reports"))
	if err != nil {
		log.Fatal(err)
	}
	defer kc.Close()
	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	defer engine.Close()
	checker, _ := claimcheck.New(engine)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	raw, err := sarama.NewSyncProducer(kc.ListenAddrs(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	producer, err := ccsarama.WrapSyncProducer(cfg, raw, checker)
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: "reports", Value: sarama.ByteEncoder(make([]byte, 4<<20))}); err != nil {
		log.Fatal(err)
	}

	consumer, err := sarama.NewConsumer(kc.ListenAddrs(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	consumer = ccsarama.WrapConsumer(consumer, checker) // the one new line
	defer consumer.Close()
	pc, err := consumer.ConsumePartition("reports", 0, sarama.OffsetOldest)
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	m := <-pc.Messages()
	fmt.Printf("received %d bytes, claim-checked %v\n", len(m.Value), ccsarama.IsClaimChecked(m))
	// Output:
	// received 4194304 bytes, claim-checked false
}
