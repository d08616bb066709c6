package ccsarama_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// TestKcatProducesReference: a claim-check reference that kcat, a producer
// that knows nothing of claimstash, writes by hand as the README's wire
// contract says (the body one stash address, claimstash-version: 1,
// claimstash-size, a header of the producer's own, a key) reaches a
// ccsarama consumer as the payload, with its key, its own header and
// without the contract headers; a plain record passes through as kcat
// wrote it; a reference whose size header lies is reported as
// stash.ErrIntegrity and never delivered.
func TestKcatProducesReference(t *testing.T) {
	bin := kcat(t)
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Broker) {
		topic := k.NewTopic(t, "kcat-ref", 1, nil)
		c, _ := newChecker(t, claimcheck.DiscardAfter(1))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		data := random(t, 2<<20)
		s, err := c.Engine().Create(ctx, "orders", data)
		if err != nil {
			t.Fatal(err)
		}
		addr := s.Address.String()
		brokers := strings.Join(k.Addrs, ",")
		produce := func(key, body string, headers ...string) {
			args := []string{"-P", "-b", brokers, "-t", topic, "-k", key}
			for _, h := range headers {
				args = append(args, "-H", h)
			}
			clitool.Run(t, ctx, nil, []byte(body), bin, args...)
		}
		size := strconv.Itoa(len(data))
		produce("order-1", addr, claimcheck.HeaderVersion+"=1", claimcheck.HeaderSize+"="+size, "Trace-ID=t-1")
		produce("order-2", addr, claimcheck.HeaderVersion+"=1", claimcheck.HeaderSize+"=12", "Trace-ID=t-2")
		produce("order-3", "a plain record", "Trace-ID=t-3")

		cfg := config()
		cons, err := sarama.NewConsumer(k.Addrs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		pc, err := ccsarama.WrapConsumer(cons, c).ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		next := func() *sarama.ConsumerMessage {
			t.Helper()
			select {
			case m := <-pc.Messages():
				return m
			case <-ctx.Done():
				t.Fatal("no message")
				return nil
			}
		}
		headers := func(m *sarama.ConsumerMessage) map[string]string {
			h := map[string]string{}
			for _, rh := range m.Headers {
				h[string(rh.Key)] = string(rh.Value)
			}
			return h
		}

		m := next()
		if string(m.Key) != "order-1" || string(m.Value) != string(data) {
			t.Fatalf("first record: key %q, %d bytes; want order-1 and the %d-byte payload", m.Key, len(m.Value), len(data))
		}
		if h := headers(m); len(h) != 1 || h["Trace-ID"] != "t-1" {
			t.Errorf("first record's headers %v: want Trace-ID only", h)
		}

		select {
		case ce := <-pc.Errors():
			var re *ccsarama.RehydrateError
			if !errors.As(ce, &re) || !errors.Is(re, stash.ErrIntegrity) || !re.Skipped || string(re.Message.Key) != "order-2" {
				t.Fatalf("error for the lying reference: %v; want a skipped integrity failure of order-2", ce)
			}
		case <-ctx.Done():
			t.Fatal("the lying reference was not reported")
		}

		m = next() // the lying reference was skipped, never delivered
		if string(m.Key) != "order-3" || string(m.Value) != "a plain record" || headers(m)["Trace-ID"] != "t-3" || len(m.Headers) != 1 {
			t.Errorf("plain record: key %q, %q, headers %v", m.Key, m.Value, headers(m))
		}
	})
}
