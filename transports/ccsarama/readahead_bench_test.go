package ccsarama_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/benchratio"
	"github.com/claimstash/claimstash/internal/kafkabroker"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// BenchmarkConsumeS3 consumes a backlog of claim-checked 1 MiB messages
// (random, so incompressible) from one Kafka partition whose stashes
// are on MinIO (the `make tools` binary, loopback), through the consumer
// group handler wrapper with read-ahead 1 (one stash read at a time, as
// before read-ahead existed), 3 and the default (8), in rotating order in
// the same run, each round a fresh consumer group over the same backlog.
//
// It reports messages per second for each ("msgs/s-ra1", ...), each one's
// ratio to read-ahead 1 ("speedup-ra3", "speedup-ra8"), and two latencies (p50 and p99 over every message
// of every round): "stall", how long the handler waits for its next message
// once it has marked the last (the latency claim-checking adds to the
// handler's loop), and "held", the time from the wrapper taking a message
// from sarama to the handler getting it (with read-ahead this includes the
// wait behind earlier messages of the window, a wait that without it is
// spent in sarama's buffer instead, where it is not counted).
//
// It runs on kfake and on Apache Kafka (the shared broker of
// internal/kafkabroker), as sub-benchmarks kfake and kafka.
//
//	go test -run '^$' -bench ConsumeS3 -benchtime 4x ./transports/ccsarama/
func BenchmarkConsumeS3(b *testing.B) {
	b.Run(kafkatest.KfakeName, func(b *testing.B) {
		c := startKafka(b, 1)
		benchConsumeS3(b, &kafkatest.Broker{Name: kafkatest.KfakeName, Addrs: c.Addrs, Kfake: c})
	})
	b.Run(kafkatest.KafkaName, func(b *testing.B) {
		k := kafkabroker.Shared(b)
		benchConsumeS3(b, &kafkatest.Broker{Name: kafkatest.KafkaName, Addrs: k.Addrs, Kafka: k})
	})
}

func benchConsumeS3(b *testing.B, k *kafkatest.Broker) {
	const (
		size    = 1 << 20
		backlog = 48
		bucket  = "readahead"
	)
	srv := miniotest.Start(b, bucket)
	store, err := s3stash.New(srv.Client())
	if err != nil {
		b.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(store), stash.WithNamespace(bucket), stash.WithInlineMax(-1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	c, err := claimcheck.New(e)
	if err != nil {
		b.Fatal(err)
	}
	topic := k.NewTopic(b, "backlog", 1, nil)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(b, k.Addrs, cfg), c)
	if err != nil {
		b.Fatal(err)
	}
	for range backlog {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(random(b, size))}); err != nil {
			b.Fatal(err)
		}
	}

	type result struct {
		elapsed time.Duration
		added   []time.Duration
		stalls  []time.Duration
	}
	round := func(group string, readAhead int) result {
		h := &timedHandler{want: backlog, size: size, done: make(chan struct{})}
		wrapped := ccsarama.WrapConsumerGroupHandler(h, c, ccsarama.WithReadAhead(readAhead))
		g, err := sarama.NewConsumerGroup(k.Addrs, group, config())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, 1)
		go func() {
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{topic}, &stamper{h: wrapped, t: h}); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		select {
		case <-h.done:
		case <-time.After(2 * time.Minute):
			b.Fatalf("read-ahead %d: %d of %d messages after 2 minutes", readAhead, h.n(), backlog)
		}
		cancel()
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		g.Close()
		if h.err != nil {
			b.Fatal(h.err)
		}
		if h.unstamped > 0 {
			b.Fatalf("%d messages reached the handler before their stamp", h.unstamped)
		}
		return result{elapsed: h.last.Sub(h.first), added: h.added, stalls: h.stalls}
	}

	// Today's behaviour first (one read at a time), then a narrow window
	// and the default; the order rotates every iteration.
	widths := []int{1, 3, ccsarama.DefaultReadAhead}
	type tally struct {
		elapsed       time.Duration
		added, stalls []time.Duration
	}
	tallies := make([]tally, len(widths))
	round(topic+"-warm", ccsarama.DefaultReadAhead)
	b.ResetTimer()
	for i := range b.N {
		for j := range widths {
			w := (i + j) % len(widths)
			r := round(fmt.Sprintf("%s-ra%d-%d", topic, widths[w], i), widths[w])
			tallies[w].elapsed += r.elapsed
			tallies[w].added = append(tallies[w].added, r.added...)
			tallies[w].stalls = append(tallies[w].stalls, r.stalls...)
		}
	}
	b.StopTimer()
	// The first message of a round starts the clock: backlog-1 intervals.
	n := float64(b.N * (backlog - 1))
	pct := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	for w, t := range tallies {
		ra := fmt.Sprintf("-ra%d", widths[w])
		b.ReportMetric(n/t.elapsed.Seconds(), "msgs/s"+ra)
		if w > 0 {
			b.ReportMetric(tallies[0].elapsed.Seconds()/t.elapsed.Seconds(), "speedup"+ra)
		}
		b.ReportMetric(pct(t.added, 0.5), "held-p50-ms"+ra)
		b.ReportMetric(pct(t.added, 0.99), "held-p99-ms"+ra)
		b.ReportMetric(pct(t.stalls, 0.5), "stall-p50-ms"+ra)
		b.ReportMetric(pct(t.stalls, 0.99), "stall-p99-ms"+ra)
	}
}

// stamper sits between sarama and the wrapper under test: it notes when the
// wrapper takes each message from the claim.
type stamper struct {
	h sarama.ConsumerGroupHandler
	t *timedHandler
}

func (s *stamper) Setup(sess sarama.ConsumerGroupSession) error   { return s.h.Setup(sess) }
func (s *stamper) Cleanup(sess sarama.ConsumerGroupSession) error { return s.h.Cleanup(sess) }

func (s *stamper) ConsumeClaim(sess sarama.ConsumerGroupSession, sc sarama.ConsumerGroupClaim) error {
	cl := &stampedClaim{ConsumerGroupClaim: sc, msgs: make(chan *sarama.ConsumerMessage)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(cl.msgs)
		for m := range sc.Messages() {
			// Stamped as offered, then again once taken: the wrapper may
			// hand the message on before this goroutine runs again.
			offered := time.Now()
			s.t.stamp(m.Offset, offered)
			select {
			case cl.msgs <- m:
				s.t.took(m.Offset, offered, time.Now())
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	return s.h.ConsumeClaim(sess, cl)
}

type stampedClaim struct {
	sarama.ConsumerGroupClaim
	msgs chan *sarama.ConsumerMessage
}

func (c *stampedClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

// timedHandler receives rehydrated messages, checks their size, marks them,
// and records when each arrived relative to its stamp.
type timedHandler struct {
	want, size  int
	mu          sync.Mutex
	taken       map[int64]time.Time
	added       []time.Duration
	first, last time.Time
	unstamped   int
	asked       time.Time       // when the handler last came back for a message
	stalls      []time.Duration // how long it waited each time
	err         error
	done        chan struct{}
}

// stamp records t for off unless off has a stamp (from an earlier
// delivery).
func (h *timedHandler) stamp(off int64, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.taken == nil {
		h.taken = map[int64]time.Time{}
	}
	if _, ok := h.taken[off]; !ok {
		h.taken[off] = t
	}
}

// took moves off's stamp from offered to t, if offered is its stamp (a
// handler that got the message first used the offered time).
func (h *timedHandler) took(off int64, offered, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.taken[off].Equal(offered) {
		h.taken[off] = t
	}
}

func (h *timedHandler) n() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.added)
}

func (h *timedHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *timedHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *timedHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.mu.Lock()
	h.asked = time.Time{}
	h.mu.Unlock()
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			now := time.Now()
			h.mu.Lock()
			if len(m.Value) != h.size && h.err == nil {
				h.err = fmt.Errorf("offset %d: %d bytes, want %d", m.Offset, len(m.Value), h.size)
			}
			// The stamp is taken just after the wrapper took the message,
			// a stash read (milliseconds) before it can reach us.
			if len(h.added) < h.want {
				t, ok := h.taken[m.Offset]
				if !ok {
					h.unstamped++
					t = now
				}
				h.added = append(h.added, now.Sub(t))
				if !h.asked.IsZero() {
					h.stalls = append(h.stalls, now.Sub(h.asked))
				}
				if len(h.added) == 1 {
					h.first = now
				}
				h.last = now
				if len(h.added) == h.want {
					close(h.done)
				}
			}
			sess.MarkMessage(m, "")
			h.asked = time.Now()
			h.mu.Unlock()
		case <-sess.Context().Done():
			return nil
		}
	}
}

// BenchmarkConsumeSmall consumes a backlog of 1 KiB messages (under the
// threshold, so nothing to rehydrate) from one kfake partition through a
// raw handler and through the wrapper, alternately in the same run, each
// round a fresh consumer group, timed from the first message a round
// receives to its last. It reports the time per message of each, the
// median over pairs of rounds of the wrapper's time over raw's ("ratio";
// target <= 1.02), the same for the CPU time of the process ("cpu-ratio":
// kfake runs in it too, so this dilutes the wrapper's share, but a
// machine's load moves it far less than wall time), and the heap allocations per message of each round kind
// (the process's, so kfake's and sarama's are in both) and their
// difference ("extra-allocs/msg"; target 0).
//
//	go test -run '^$' -bench ConsumeSmall -benchtime 6x ./transports/ccsarama/
func BenchmarkConsumeSmall(b *testing.B) {
	const backlog = 20000
	c, _ := newChecker(b)
	k := startKafka(b, 1)
	k.CreateTopic(b, "small", 1, nil)
	cfg := config()
	p := syncProducer(b, k.Addrs, cfg)
	body := random(b, 1<<10)
	msgs := make([]*sarama.ProducerMessage, 0, backlog)
	for range backlog {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: "small", Value: sarama.ByteEncoder(body)})
	}
	if err := p.SendMessages(msgs); err != nil {
		b.Fatal(err)
	}
	type result struct {
		elapsed, cpu time.Duration
		mallocs      uint64 // from the first message to the last
	}
	round := func(group string, wrap bool) result {
		h := &countHandler{want: backlog, done: make(chan struct{})}
		var gh sarama.ConsumerGroupHandler = h
		if wrap {
			gh = ccsarama.WrapConsumerGroupHandler(h, c)
		}
		g, err := sarama.NewConsumerGroup(k.Addrs, group, config())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, 1)
		go func() {
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{"small"}, gh); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
		select {
		case <-h.done:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d messages after a minute", h.n, backlog)
		}
		cancel()
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		g.Close()
		return result{h.last.Sub(h.first), h.lastCPU - h.firstCPU, h.lastMallocs - h.firstMallocs}
	}
	round("warm", true)
	var tRaw, tWrapped time.Duration
	var aRaw, aWrapped uint64
	var ratios, cpuRatios []float64
	var cRaw, cWrapped time.Duration
	b.ResetTimer()
	for i := range b.N {
		var r, w result
		if i%2 == 0 {
			r = round(fmt.Sprintf("raw-%d", i), false)
			w = round(fmt.Sprintf("wrapped-%d", i), true)
		} else {
			w = round(fmt.Sprintf("wrapped-%d", i), true)
			r = round(fmt.Sprintf("raw-%d", i), false)
		}
		tRaw += r.elapsed
		tWrapped += w.elapsed
		aRaw += r.mallocs
		aWrapped += w.mallocs
		cRaw += r.cpu
		cWrapped += w.cpu
		ratios = append(ratios, float64(w.elapsed)/float64(r.elapsed))
		cpuRatios = append(cpuRatios, float64(w.cpu)/float64(r.cpu))
	}
	b.StopTimer()
	n := float64(b.N * (backlog - 1))
	slices.Sort(ratios)
	slices.Sort(cpuRatios)
	b.ReportMetric(float64(tRaw.Nanoseconds())/n, "ns/msg-raw")
	b.ReportMetric(float64(tWrapped.Nanoseconds())/n, "ns/msg-wrapped")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric(float64(cRaw.Nanoseconds())/n, "cpu-ns/msg-raw")
	b.ReportMetric(float64(cWrapped.Nanoseconds())/n, "cpu-ns/msg-wrapped")
	b.ReportMetric(cpuRatios[len(cpuRatios)/2], "cpu-ratio")
	b.ReportMetric(float64(aRaw)/n, "allocs/msg-raw")
	b.ReportMetric(float64(aWrapped)/n, "allocs/msg-wrapped")
	b.ReportMetric((float64(aWrapped)-float64(aRaw))/n, "extra-allocs/msg")
}

// countHandler marks every message and notes when the first and the
// want-th arrived.
type countHandler struct {
	want, n                   int
	first, last               time.Time
	firstMallocs, lastMallocs uint64
	firstCPU, lastCPU         time.Duration
	done                      chan struct{}
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func (h *countHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *countHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *countHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			sess.MarkMessage(m, "")
			if h.n < h.want {
				h.n++
				switch h.n {
				case 1:
					h.firstMallocs = mallocs()
					h.firstCPU = benchratio.CPUTime()
					h.first = time.Now()
				case h.want:
					h.last = time.Now()
					h.lastCPU = benchratio.CPUTime()
					h.lastMallocs = mallocs()
					close(h.done)
				}
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}
