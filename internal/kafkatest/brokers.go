package kafkatest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/claimstash/claimstash/internal/kafkabroker"
)

// Broker is one Kafka a test runs against: a kfake cluster of the sub-test's
// own, or the Apache Kafka broker the test binary shares
// (kafkabroker.Shared). Tests that run on both take their topic names from
// NewTopic or Topic, so that tests sharing the real broker never meet.
type Broker struct {
	// Name is "kfake" or "kafka", the sub-test's name.
	Name string
	// Addrs are the bootstrap addresses.
	Addrs []string
	// Kfake is the kfake cluster, nil on Apache Kafka.
	Kfake *Cluster
	// Kafka is the Apache Kafka broker, nil on kfake.
	Kafka *kafkabroker.Broker
}

// Names of the brokers Each runs on, as sub-test names.
const (
	KfakeName = "kfake"
	KafkaName = "kafka"
)

// Each runs f as two sub-tests of t: "kfake", on a one-broker kfake cluster
// started with opts, and "kafka", on the shared Apache Kafka broker, which
// skips (fails under CI=true) when the broker cannot run here. The test
// binary's TestMain calls kafkabroker.StopShared after m.Run.
func Each(t *testing.T, f func(t *testing.T, b *Broker), opts ...kfake.Opt) {
	t.Helper()
	t.Run(KfakeName, func(t *testing.T) {
		c := Start(t, 1, opts...)
		f(t, &Broker{Name: KfakeName, Addrs: c.Addrs, Kfake: c})
	})
	t.Run(KafkaName, func(t *testing.T) {
		k := kafkabroker.Shared(t)
		f(t, &Broker{Name: KafkaName, Addrs: k.Addrs, Kafka: k})
	})
}

var topicSeq atomic.Int64

// Topic returns a topic name for a test that asks for name: name with a
// suffix unique in the test binary, so that tests (and sub-tests, and runs
// with -count) sharing a broker never meet.
func (b *Broker) Topic(name string) string {
	return fmt.Sprintf("%s-%d", strings.TrimSuffix(name, "-"), topicSeq.Add(1))
}

// CreateTopic creates topic, exactly so named, with the given partitions
// and topic configs (nil keeps the defaults). It fails tb on error,
// including, on Apache Kafka, when the topic exists.
func (b *Broker) CreateTopic(tb testing.TB, topic string, partitions int32, configs map[string]string) {
	tb.Helper()
	if b.Kafka != nil {
		b.Kafka.CreateTopic(tb, topic, partitions, configs)
	} else {
		b.Kfake.CreateTopic(tb, topic, partitions, configs)
	}
}

// NewTopic creates the topic Topic(name) names and returns that name.
func (b *Broker) NewTopic(tb testing.TB, name string, partitions int32, configs map[string]string) string {
	tb.Helper()
	topic := b.Topic(name)
	b.CreateTopic(tb, topic, partitions, configs)
	return topic
}

// TopicBytes returns the bytes the broker holds for topic's record batches.
func (b *Broker) TopicBytes(tb testing.TB, topic string) int64 {
	tb.Helper()
	if b.Kafka != nil {
		return b.Kafka.TopicBytes(tb, topic)
	}
	return b.Kfake.TopicBytes(tb, topic)
}

// String describes the broker, for test logs.
func (b *Broker) String() string {
	if b.Kafka != nil {
		return b.Kafka.String()
	}
	return b.Kfake.String()
}
