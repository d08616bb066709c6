package kafkabroker_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/claimstash/claimstash/internal/kafkabroker"
)

func TestMain(m *testing.M) {
	code := m.Run()
	kafkabroker.StopShared()
	os.Exit(code)
}

func produce(t *testing.T, addrs []string, topic string, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerBatchMaxBytes(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
	}
}

func consume(t *testing.T, addrs []string, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("got %d of %d records: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestStartKillRestart: a broker of its own takes records, is killed as a
// crash would kill it, comes back on the same address and still has them.
func TestStartKillRestart(t *testing.T) {
	b := kafkabroker.Start(t)
	b.CreateTopic(t, "survivors", 1, nil)
	produce(t, b.Addrs, "survivors", "one", "two")
	if n := b.TopicBytes(t, "survivors"); n <= 0 {
		t.Errorf("TopicBytes = %d after two records", n)
	}

	b.Kill()
	if b.Running() {
		t.Fatal("Running after Kill")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = cl.Ping(short)
	cancel()
	cl.Close()
	if err == nil {
		t.Fatal("a killed broker answered")
	}

	start := time.Now()
	b.Restart(t)
	t.Logf("restart took %v", time.Since(start))
	produce(t, b.Addrs, "survivors", "three")
	if got := strings.Join(consume(t, b.Addrs, "survivors", 3), ","); got != "one,two,three" {
		t.Fatalf("after restart: %s", got)
	}
	b.Stop()
	b.Stop() // idempotent
	if _, err := os.Stat(b.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left %s: %v", b.Dir, err)
	}
}

// TestSharedDefaults: the shared broker keeps Kafka's default message
// limit (a raw 2 MiB record is refused by the broker itself, not by the
// client), refuses a second topic of the same name, and logs to its file.
func TestSharedDefaults(t *testing.T) {
	b := kafkabroker.Shared(t)
	if kafkabroker.Shared(t) != b {
		t.Fatal("Shared started a second broker")
	}
	b.CreateTopic(t, "defaults", 1, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...), kgo.ProducerBatchMaxBytes(16<<20), kgo.RecordRetries(1),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // zeros would compress under the limit
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "defaults", Value: make([]byte, 2<<20)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("2 MiB record: %v, want MESSAGE_TOO_LARGE from the broker", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "defaults", Value: make([]byte, kafkabroker.DefaultMaxMessageBytes-200)}).FirstErr(); err != nil {
		t.Fatalf("a record just under the limit: %v", err)
	}
	if logs := b.Logs(10000); !strings.Contains(logs, "Kafka Server started") && !strings.Contains(logs, "started (kafka.server") {
		t.Errorf("server.log does not say the broker started; its end:\n%s", b.Logs(20))
	}
}

// TestNoOrphan: a broker of its own with a property changed (a 3 MiB
// message limit, so a 2 MiB record passes) is one JVM, and nothing of it
// stays after Stop. (On Linux the kernel also kills it if the test binary
// dies first.)
func TestNoOrphan(t *testing.T) {
	if _, err := exec.LookPath("pgrep"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kafkabroker: pgrep not found under CI=true (apt-get install procps)")
		}
		t.Skip("kafkabroker: pgrep not found (apt-get install procps)")
	}
	b := kafkabroker.Start(t, kafkabroker.WithProperty("message.max.bytes", "3145728"), kafkabroker.WithHeap("256m"))
	b.CreateTopic(t, "roomy", 1, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...), kgo.ProducerBatchMaxBytes(16<<20),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "roomy", Value: make([]byte, 2<<20)}).FirstErr()
	cancel()
	cl.Close()
	if err != nil {
		t.Fatalf("2 MiB record under a 3 MiB message.max.bytes: %v", err)
	}
	if out, _ := exec.Command("pgrep", "-f", b.Dir).Output(); len(strings.Fields(string(out))) != 1 {
		t.Fatalf("processes naming %s: %q, want the one JVM", b.Dir, out)
	}
	b.Stop()
	if out, _ := exec.Command("pgrep", "-f", b.Dir).Output(); len(out) != 0 {
		t.Fatalf("processes left after Stop: %q", out)
	}
}
