package ccsarama_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// DeleteAfterAck cannot apply to a ConsumerInterceptor; building one says
// so on the logger instead of ignoring the option silently.
func TestDeleteAfterAckInterceptorIsNotSilent(t *testing.T) {
	engine, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts []claimcheck.Option
		warn bool
	}{{nil, false}, {[]claimcheck.Option{claimcheck.DeleteAfterAck()}, true}} {
		c, err := claimcheck.New(engine, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		ccsarama.NewConsumerInterceptor(c, ccsarama.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		if got := strings.Contains(buf.String(), "DeleteAfterAck is not applied"); got != tc.warn {
			t.Errorf("DeleteAfterAck=%v: warned %v, log %q", tc.warn, got, buf.String())
		}
	}
}

// With the checker's DeleteAfterAck, marking a rehydrated message deletes
// its stash; messages not yet marked keep theirs.
func TestDeleteAfterMark(t *testing.T) {
	k := startKafka(t, 1)
	k.CreateTopic(t, "marked", 1, nil)
	c, _ := newChecker(t, claimcheck.DeleteAfterAck())
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for range 2 {
		m := &sarama.ProducerMessage{Topic: "marked", Value: sarama.ByteEncoder(random(t, 300<<10))}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
		a, _ := m.Value.Encode()
		addrs = append(addrs, string(a))
	}
	col := newCollector("d")
	runGroup(t, k.Addrs, cfg, "g-delete", []string{"marked"}, ccsarama.WrapConsumerGroupHandler(col, c))
	receive(t, col.got, 2, 20*time.Second) // the collector marks what it sends
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			_, err := c.Engine().Stat(context.Background(), a)
			if errors.Is(err, stash.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stash %s of a marked message still there (%v)", a, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
