package ccsarama_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

type nopGroupHandler struct{}

func (nopGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (nopGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (nopGroupHandler) ConsumeClaim(sarama.ConsumerGroupSession, sarama.ConsumerGroupClaim) error {
	return nil
}

// DeleteAfterAck is not applied to consumer groups; wrapping says so on the
// logger instead of ignoring the option silently.
func TestDeleteAfterAckIsNotSilent(t *testing.T) {
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
		ccsarama.WrapConsumerGroupHandler(nopGroupHandler{}, c, ccsarama.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		if got := strings.Contains(buf.String(), "DeleteAfterAck is not applied"); got != tc.warn {
			t.Errorf("DeleteAfterAck=%v: warned %v, log %q", tc.warn, got, buf.String())
		}
	}
}
