// Package kafkabroker starts a real Apache Kafka broker for tests: one JVM
// running `kafka.Kafka` in KRaft combined mode (broker and controller in
// one node) on free 127.0.0.1 ports, with a temporary log directory that
// is formatted first, as `kafka-storage format` does.
//
// The broker's jars are not a Go dependency: `make kafka` (part of
// `make tools`) copies org.apache.kafka:kafka_2.13 and its runtime
// dependencies from Maven Central into <module root>/.tools/kafka/lib (or
// $CLAIMSTASH_TOOLS/kafka/lib), and the broker runs on the machine's java
// ($JAVA_HOME/bin/java, else java on PATH; Java 17 or later). When either
// is missing, Start and Shared skip the test with a one-line reason, except
// under CI=true, where they fail it.
//
// Start returns once a metadata request succeeds. The JVM runs in a process
// group of its own and, on Linux, is killed by the kernel if the test binary
// dies first, so no broker outlives its tests. Its settings suit one node
// and fast tests (replication factors 1, no initial rebalance delay, group
// session timeouts from 100 ms, a 512 MiB heap) and keep Kafka's default
// message size limit, message.max.bytes = 1048588. The broker logs to
// server.log in its directory (see Logs), not to the test's output.
package kafkabroker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/claimstash/claimstash/internal/testproc"
)

// DefaultMaxMessageBytes is the size limit of a topic that does not raise
// it: Kafka's default message.max.bytes.
const DefaultMaxMessageBytes = 1048588

// readyTimeout bounds how long Start and Restart wait for the first
// successful metadata request. A JVM broker on a loaded two-core machine
// takes a few seconds.
const readyTimeout = 2 * time.Minute

// Option changes how Start configures a broker.
type Option interface{ apply(*config) }

type config struct {
	props map[string]string
	heap  string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithProperty sets one server.properties entry, replacing the default
// (for example "message.max.bytes" or "auto.create.topics.enable"). The
// listener, node and log directory settings are the harness's own and are
// refused.
func WithProperty(key, value string) Option {
	return optionFunc(func(c *config) { c.props[key] = value })
}

// WithHeap sets the JVM's maximum heap (-Xmx), "512m" by default.
func WithHeap(size string) Option {
	return optionFunc(func(c *config) { c.heap = size })
}

// reserved are the properties the harness derives from its ports and
// directory.
var reserved = []string{
	"process.roles", "node.id", "controller.quorum.voters", "controller.quorum.bootstrap.servers",
	"listeners", "advertised.listeners", "controller.listener.names", "inter.broker.listener.name",
	"listener.security.protocol.map", "log.dirs", "log.dir", "metadata.log.dir",
}

// defaults are the test settings: one node, quick groups, few threads.
func defaults() map[string]string {
	return map[string]string{
		"num.partitions":                                   "1",
		"default.replication.factor":                       "1",
		"min.insync.replicas":                              "1",
		"auto.create.topics.enable":                        "true",
		"delete.topic.enable":                              "true",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "4",
		"offsets.commit.timeout.ms":                        "5000",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "4",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
		"group.min.session.timeout.ms":                     "100",
		"group.consumer.min.session.timeout.ms":            "1000",
		"group.consumer.min.heartbeat.interval.ms":         "100",
		"num.network.threads":                              "2",
		"num.io.threads":                                   "2",
		"background.threads":                               "2",
		"num.recovery.threads.per.data.dir":                "1",
		"num.replica.fetchers":                             "1",
		"log.cleaner.threads":                              "1",
		"log.cleaner.dedupe.buffer.size":                   "8388608",
		"log.segment.bytes":                                "67108864",
		"log.retention.check.interval.ms":                  "600000",
		"controller.quorum.election.timeout.ms":            "1000",
		"controller.quorum.fetch.timeout.ms":               "2000",
		"broker.heartbeat.interval.ms":                     "250",
		"broker.session.timeout.ms":                        "3000",
	}
}

// Broker is a running Apache Kafka broker.
type Broker struct {
	// Addr is the broker's client listener, "127.0.0.1:<port>"; Addrs is
	// the same, as a bootstrap list.
	Addr  string
	Addrs []string
	// Dir holds server.properties, server.log and the log directory
	// (data/). It survives Restart and is removed by Stop.
	Dir string

	java, lib  string
	controller string // the controller listener, 127.0.0.1:<port>
	cfg        config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *tailBuffer   // the JVM's stdout and stderr (server.log has the rest)
}

// Lib returns the directory holding the broker's jars and whether it holds
// them: $CLAIMSTASH_TOOLS/kafka/lib, or <module root>/.tools/kafka/lib.
func Lib() (string, bool) {
	dir, ok := testproc.ToolsPath("kafka", "lib")
	if !ok {
		return "", false
	}
	jars, _ := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar"))
	return dir, len(jars) > 0
}

// unavailable skips tb with reason, or fails it under CI=true.
func unavailable(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(reason)
	}
	tb.Skip(reason)
}

// Start starts a broker of tb's own with opts applied, or skips tb (fails
// it under CI=true) when the jars or java are missing. tb.Cleanup stops it.
// A JVM broker costs seconds to start and hundreds of MiB: tests that need
// no broker of their own (to kill it, or to change its settings) use
// Shared.
func Start(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	b := launch(tb, opts)
	tb.Cleanup(b.Stop)
	return b
}

var shared struct {
	mu  sync.Mutex
	b   *Broker
	err string // why the first launch failed; later calls report it at once
}

// Shared returns one broker for the whole test binary, with the default
// settings, started by the first call (skipping or failing tb as Start
// does). Tests that share it use topics and consumer groups of their own.
// Call StopShared from TestMain after m.Run:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		kafkabroker.StopShared()
//		os.Exit(code)
//	}
func Shared(tb testing.TB) *Broker {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.err != "" {
		unavailable(tb, shared.err)
	}
	if shared.b == nil {
		b, reason, err := tryLaunch(nil)
		if reason != "" {
			unavailable(tb, reason)
		}
		if err != nil {
			shared.err = err.Error()
			tb.Fatal(err)
		}
		shared.b = b
	}
	return shared.b
}

// StopShared stops the broker Shared started, if any.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.b != nil {
		shared.b.Stop()
		shared.b = nil
	}
}

// M is what TestMain runs: *testing.M, or what goleak.VerifyTestMain takes.
type M interface{ Run() int }

// StopAfter wraps m so that Run stops the shared broker once the tests
// have run, before Run returns; a leak check after Run (goleak) then sees
// no goroutine of the harness:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(kafkabroker.StopAfter(m))
//	}
func StopAfter(m M) M { return stopAfter{m} }

type stopAfter struct{ m M }

func (s stopAfter) Run() int {
	defer StopShared()
	return s.m.Run()
}

func launch(tb testing.TB, opts []Option) *Broker {
	tb.Helper()
	b, reason, err := tryLaunch(opts)
	if reason != "" {
		unavailable(tb, reason)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// tryLaunch starts a broker. reason is set when the tools are missing (a
// skip outside CI), err when the broker would not start (always a failure).
func tryLaunch(opts []Option) (b *Broker, reason string, err error) {
	lib, ok := Lib()
	if !ok {
		return nil, fmt.Sprintf("kafkabroker: Apache Kafka jars not found in %q: run `make kafka`", lib), nil
	}
	java, ok := testproc.Java()
	if !ok {
		return nil, "kafkabroker: java not found (set JAVA_HOME or put Java 17 on PATH)", nil
	}
	cfg := config{props: defaults(), heap: "512m"}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(&cfg)
	}
	for _, k := range reserved {
		if _, ok := cfg.props[k]; ok {
			return nil, "", fmt.Errorf("kafkabroker: property %s is set by the harness", k)
		}
	}
	dir, err := os.MkdirTemp("", "kafkabroker-")
	if err != nil {
		return nil, "", fmt.Errorf("kafkabroker: %w", err)
	}
	b = &Broker{Dir: dir, java: java, lib: lib, cfg: cfg}
	for attempt := 0; attempt < 3; attempt++ {
		if err = b.init(); err != nil {
			continue
		}
		if err = b.start(); err == nil {
			return b, "", nil
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, "", fmt.Errorf("kafkabroker: starting Apache Kafka: %w", err)
}

var errAddrInUse = errors.New("address already in use")

// init picks the ports, writes the configuration and formats the log
// directory.
func (b *Broker) init() error {
	addr, err := testproc.FreeAddr()
	if err != nil {
		return err
	}
	ctrl, err := testproc.FreeAddr()
	if err != nil {
		return err
	}
	b.Addr, b.Addrs, b.controller = addr, []string{addr}, ctrl
	data := filepath.Join(b.Dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	props := maps.Clone(b.cfg.props)
	maps.Copy(props, map[string]string{
		"process.roles":                  "broker,controller",
		"node.id":                        "1",
		"controller.quorum.voters":       "1@" + ctrl,
		"listeners":                      "PLAINTEXT://" + addr + ",CONTROLLER://" + ctrl,
		"advertised.listeners":           "PLAINTEXT://" + addr,
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                       data,
	})
	var sb strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&sb, "%s=%s\n", k, props[k])
	}
	if err := os.WriteFile(b.path("server.properties"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(b.path("log4j2.properties"), []byte(log4j(b.path("server.log"))), 0o644); err != nil {
		return err
	}
	// kafka-storage format: the cluster id is a base64url UUID.
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	out, err := b.javaCmd("kafka.tools.StorageTool", "format", "-t", base64.RawURLEncoding.EncodeToString(id),
		"-c", b.path("server.properties")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("formatting storage: %v\n%s", err, out)
	}
	return nil
}

// log4j is the logging configuration: everything at INFO to one file,
// nothing on the console.
func log4j(file string) string {
	return `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ` + file + `
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
`
}

func (b *Broker) path(name string) string { return filepath.Join(b.Dir, name) }

// javaCmd runs main on the broker's classpath with a small heap and
// settings that favour start-up time over peak throughput.
func (b *Broker) javaCmd(main string, args ...string) *exec.Cmd {
	jvm := []string{
		"-Xmx" + b.cfg.heap, "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + b.path("log4j2.properties"),
		"-Dkafka.logs.dir=" + b.Dir,
		"-cp", filepath.Join(b.lib, "*"),
		main,
	}
	cmd := exec.Command(b.java, append(jvm, args...)...)
	cmd.Dir = b.Dir
	testproc.DieWithParent(cmd, true)
	return cmd
}

func (b *Broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cmd := b.javaCmd("kafka.Kafka", b.path("server.properties"))
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.cmd, b.done, b.out = cmd, done, out
	if err := b.waitReady(done); err != nil {
		testproc.KillGroup(cmd)
		<-done
		b.cmd = nil
		logs := b.logTail(40)
		if strings.Contains(logs, "Address already in use") || strings.Contains(out.String(), "Address already in use") {
			err = fmt.Errorf("%w: %w", errAddrInUse, err)
		}
		return fmt.Errorf("%w\njava output:\n%s\nserver.log (end):\n%s", err, out.String(), logs)
	}
	return nil
}

// waitReady returns once a metadata request to the client listener lists
// this broker, or fails when the JVM exits or readyTimeout passes.
func (b *Broker) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-exited:
			return errors.New("the broker exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("broker not ready on %s after %v: %v", b.Addr, readyTimeout, last)
		default:
		}
		if last = b.ping(ctx); last == nil {
			return nil
		}
		select {
		case <-exited:
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *Broker) ping(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Brokers) == 0 {
		return errors.New("metadata lists no broker")
	}
	return nil
}

// Stop kills the broker, waits for it to exit and removes its directory.
// It is idempotent.
func (b *Broker) Stop() {
	b.Kill()
	os.RemoveAll(b.Dir)
}

// Kill kills the broker as a crash would (SIGKILL), keeping its log
// directory for Restart. It is idempotent.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	testproc.KillGroup(b.cmd)
	<-b.done
	b.cmd = nil
}

// Restart kills the broker if it runs and starts it again on the same
// ports over the same log directory, failing tb if it is not ready again
// within two minutes. Records acknowledged before the kill are still there:
// the kernel keeps what the broker wrote, and Kafka recovers its logs.
func (b *Broker) Restart(tb testing.TB) {
	tb.Helper()
	if err := b.Relaunch(); err != nil {
		tb.Fatal(err)
	}
}

// Relaunch is Restart for a goroutine other than the test's, which may not
// fail it: it returns the error instead.
func (b *Broker) Relaunch() error {
	b.Kill()
	var err error
	for attempt := 0; attempt < 20; attempt++ { // the ports may linger briefly
		if err = b.start(); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("kafkabroker: restarting Apache Kafka: %w", err)
	}
	return nil
}

// Running reports whether the broker process is alive.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return false
	}
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Logs returns the end of the broker's server.log, about the last n lines.
func (b *Broker) Logs(n int) string { return b.logTail(n) }

func (b *Broker) logTail(n int) string {
	data, err := os.ReadFile(b.path("server.log"))
	if err != nil {
		return ""
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// String describes the broker, for test logs.
func (b *Broker) String() string { return "kafka[" + b.Addr + "]" }

// client returns a short-lived admin client.
func (b *Broker) client(tb testing.TB) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...))
	if err != nil {
		tb.Fatalf("kafkabroker: client: %v", err)
	}
	return cl
}

// CreateTopic creates topic with the given partitions and topic configs
// (for example {"max.message.bytes": "16777216"}); nil configs keep the
// defaults. It returns once every partition has a leader that serves it
// (answers ListOffsets), and fails tb on error, including when the topic
// exists.
func (b *Broker) CreateTopic(tb testing.TB, topic string, partitions int32, configs map[string]string) {
	tb.Helper()
	cl := b.client(tb)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 20000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		tb.Fatalf("kafkabroker: creating topic %s: %v", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			msg := ""
			if t.ErrorMessage != nil {
				msg = ": " + *t.ErrorMessage
			}
			tb.Fatalf("kafkabroker: creating topic %s: %v%s", topic, err, msg)
		}
	}
	b.waitLeaders(tb, ctx, cl, topic, partitions)
}

func (b *Broker) waitLeaders(tb testing.TB, ctx context.Context, cl *kgo.Client, topic string, partitions int32) {
	tb.Helper()
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && int32(len(resp.Topics[0].Partitions)) == partitions {
			ready := true
			for _, p := range resp.Topics[0].Partitions {
				ready = ready && p.ErrorCode == 0 && p.Leader >= 0
			}
			// Metadata names a leader before that broker serves the
			// partition: until it does, ListOffsets (a plain consumer's
			// first request) and Produce get NOT_LEADER_OR_FOLLOWER.
			if ready && b.serving(ctx, cl, topic, partitions) {
				return
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("kafkabroker: topic %s has no leaders: %v", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serving reports whether every partition of topic answers ListOffsets
// from its leader without error.
func (b *Broker) serving(ctx context.Context, cl *kgo.Client, topic string, partitions int32) bool {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -2 // earliest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false
	}
	n := int32(0)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return false
			}
			n++
		}
	}
	return n == partitions
}

// TopicBytes returns the bytes the broker holds for topic's record
// batches, summed over its partitions, as DescribeLogDirs reports them.
func (b *Broker) TopicBytes(tb testing.TB, topic string) int64 {
	tb.Helper()
	cl := b.client(tb)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrDescribeLogDirsRequest().RequestWith(ctx, cl)
	if err != nil {
		tb.Fatalf("kafkabroker: describing log dirs: %v", err)
	}
	var n int64
	for _, d := range resp.Dirs {
		for _, rt := range d.Topics {
			if rt.Topic == topic {
				for _, p := range rt.Partitions {
					n += p.Size
				}
			}
		}
	}
	return n
}

// tailBuffer keeps the last max bytes written to it; exec writes stdout
// and stderr from two goroutines.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
