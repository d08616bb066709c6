// Package kafkatest starts in-process Kafka clusters for tests: franz-go's
// kfake, speaking the Kafka wire protocol on loopback.
//
//	c := kafkatest.Start(t, 1)
//	c.CreateTopic(t, "orders", 3, nil)
//	// dial c.Addrs with sarama, franz-go, watermill-kafka...
//
// Brokers listen on random 127.0.0.1 ports. Topics and brokers keep Kafka's
// default message size limit, 1 MiB (message.max.bytes = 1048588), unless a
// topic's configs raise it ("max.message.bytes"). The cluster is shut down
// by tb.Cleanup.
//
// Each runs a test twice, on kfake and on the real Apache Kafka broker of
// package kafkabroker, as sub-tests named "kfake" and "kafka".
package kafkatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxMessageBytes is the size limit of a topic that does not raise
// it: Kafka's default, which kfake enforces.
const DefaultMaxMessageBytes = 1048588

// Cluster is a running kfake cluster. The embedded *kfake.Cluster gives
// fault injection (ControlKey), leader moves and the like.
type Cluster struct {
	*kfake.Cluster
	// Addrs are the brokers' host:port addresses, for bootstrap.
	Addrs []string
}

// Start starts a cluster of n brokers (1 if n < 1) with opts added, and
// registers its shutdown with tb.Cleanup. It fails tb if the cluster cannot
// start.
func Start(tb testing.TB, n int, opts ...kfake.Opt) *Cluster {
	tb.Helper()
	if n < 1 {
		n = 1
	}
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(n)}, opts...)...)
	if err != nil {
		tb.Fatalf("kafkatest: starting kfake: %v", err)
	}
	tb.Cleanup(kc.Close)
	return &Cluster{Cluster: kc, Addrs: kc.ListenAddrs()}
}

// admin runs one request against the cluster with a short-lived client.
func (c *Cluster) admin(tb testing.TB, req kmsg.Request) kmsg.Response {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...))
	if err != nil {
		tb.Fatalf("kafkatest: client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		tb.Fatalf("kafkatest: %T: %v", req, err)
	}
	return resp
}

// CreateTopic creates topic with the given partitions and topic configs
// (for example {"max.message.bytes": "16777216"}); nil configs keep the
// defaults. It fails tb on error.
func (c *Cluster) CreateTopic(tb testing.TB, topic string, partitions int32, configs map[string]string) {
	tb.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, partitions, 1
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, cfg)
	}
	req.Topics = append(req.Topics, t)
	resp := c.admin(tb, req).(*kmsg.CreateTopicsResponse)
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			tb.Fatalf("kafkatest: creating topic %s: %v", topic, err)
		}
	}
}

// TopicBytes returns the bytes the brokers hold for topic's record
// batches, summed over its partitions, as DescribeLogDirs reports them.
func (c *Cluster) TopicBytes(tb testing.TB, topic string) int64 {
	tb.Helper()
	// kfake reports every partition from every broker; count each once.
	sizes := map[int32]int64{}
	resp := c.admin(tb, kmsg.NewPtrDescribeLogDirsRequest()).(*kmsg.DescribeLogDirsResponse)
	for _, d := range resp.Dirs {
		for _, rt := range d.Topics {
			if rt.Topic == topic {
				for _, p := range rt.Partitions {
					sizes[p.Partition] = p.Size
				}
			}
		}
	}
	var n int64
	for _, s := range sizes {
		n += s
	}
	return n
}

// String describes the cluster, for test logs.
func (c *Cluster) String() string { return fmt.Sprintf("kfake%v", c.Addrs) }
