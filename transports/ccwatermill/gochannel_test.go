package ccwatermill_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/claimcheck/claimchecktest"
	"github.com/claimstash/claimstash/internal/kafkabroker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(kafkabroker.StopAfter(m), // the shared Apache Kafka broker stops first
		// A process-wide ticker sarama's metrics library starts once.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// goChannelFactory shares one persistent Go channel between every
// publisher and subscriber of a harness, as one broker would be.
func goChannelFactory() pubSubFactory {
	var gc *gochannel.GoChannel
	return func(t *testing.T, _ string) (message.Publisher, message.Subscriber) {
		if gc == nil {
			gc = gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
		}
		return gc, gc
	}
}

func TestConformanceGoChannel(t *testing.T) {
	claimchecktest.RunConformanceTests(t, func(t *testing.T, c *claimcheck.Checker) claimchecktest.Harness {
		return newHarness(goChannelFactory())(t, c)
	}, claimchecktest.Features{Timeout: 10 * time.Second})
}
