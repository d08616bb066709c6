// Command kafka sends a payload bigger than Kafka's 1 MiB default limit
// through a topic with sarama and claimstash, and reads it back.
//
//	go run ./examples/kafka                          # in-process broker (kfake)
//	go run ./examples/kafka -brokers localhost:9092  # the compose Kafka (make up)
//	KAFKA_BROKERS=localhost:9092 go run ./examples/kafka
//
// The stash is in memory: producer and consumer share this process. Point
// the engine at S3 or a directory to split them.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kafka example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kafka", flag.ContinueOnError)
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "comma-separated broker addresses (default: $KAFKA_BROKERS, else an in-process kfake)")
	topic := fs.String("topic", "claimstash-example", "topic")
	size := fs.Int("size", 5<<20, "payload bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	} else {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, *topic))
		if err != nil {
			return err
		}
		defer kc.Close()
		addrs = kc.ListenAddrs()
		fmt.Fprintln(out, "broker: in-process kfake")
	}

	engine, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		return err
	}
	defer engine.Close()
	var counters claimcheck.Counters
	checker, err := claimcheck.New(engine, claimcheck.WithObserver(claimcheck.Observers(&counters, claimcheck.SlogObserver(slog.Default()))))
	if err != nil {
		return err
	}

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest

	raw, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		return fmt.Errorf("connecting to %v: %w", addrs, err)
	}
	producer, err := ccsarama.WrapSyncProducer(cfg, raw, checker)
	if err != nil {
		raw.Close()
		return err
	}
	defer producer.Close()

	payload := make([]byte, *size)
	rand.Read(payload)
	id := fmt.Sprintf("run-%d", time.Now().UnixNano())
	msg := &sarama.ProducerMessage{
		Topic: *topic, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(payload),
		Headers: []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/octet-stream")}},
	}
	partition, offset, err := producer.SendMessageContext(ctx, msg)
	if err != nil {
		return err
	}
	address, _ := msg.Value.Encode()
	fmt.Fprintf(out, "sent %d bytes to %s/%d@%d as %d bytes\n", len(payload), *topic, partition, offset, len(address))

	// Read it back through a consumer group (a fresh group, so the run
	// reads from the oldest offset), waiting for the message with our key.
	group, err := sarama.NewConsumerGroup(addrs, id, cfg)
	if err != nil {
		return err
	}
	defer group.Close()
	h := &reader{key: id, found: make(chan *sarama.ConsumerMessage, 1)}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{*topic}, ccsarama.WrapConsumerGroupHandler(h, checker)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	var got *sarama.ConsumerMessage
	select {
	case got = <-h.found:
	case err := <-errc:
		return fmt.Errorf("consuming: %v", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	stop()
	<-errc
	if !bytes.Equal(got.Value, payload) {
		return errors.New("received payload differs from the one sent")
	}
	ct := ""
	for _, rh := range got.Headers {
		if string(rh.Key) == "content-type" {
			ct = string(rh.Value)
		}
	}
	s := counters.Snapshot()
	fmt.Fprintf(out, "received %d bytes, key intact, content-type %q (offloaded %d, rehydrated %d)\n", len(got.Value), ct, s.Offloaded, s.Rehydrated)
	return nil
}

// reader hands over the message with key and marks what it reads.
type reader struct {
	key   string
	found chan *sarama.ConsumerMessage
}

func (*reader) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (*reader) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (r *reader) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			sess.MarkMessage(m, "")
			if string(m.Key) == r.key {
				select {
				case r.found <- m:
				default:
				}
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}
