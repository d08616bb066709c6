package integration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
)

// pipelineResult is what runPipeline measured.
type pipelineResult struct {
	messages, large int
	bytes           int64
	elapsed         time.Duration
}

// runPipeline sends messages 0..n-1 of a fresh run through the sarama
// producer wrapper (producers goroutines at once) into an s3:// stash and a
// Kafka topic, and receives them with a decorated Watermill Kafka
// subscriber, which checks every payload byte for byte. The count must be
// exact: every message once, none twice.
func runPipeline(t *testing.T, e *env, n, producers int, timeout time.Duration) pipelineResult {
	t.Helper()
	topic, bucket := uniqueName("pipeline"), uniqueName("pipeline")
	createTopic(t, e.Kafka, topic, 4)
	e.createBucket(t, bucket)
	pc, pcount := s3Checker(t, e, bucket, 0)
	cc, ccount := s3Checker(t, e, bucket, 0)
	prod := newProducer(t, e.Kafka, pc)
	seed := uint64(time.Now().UnixNano())

	ta := newTally(seed, n)
	sub := newSubscriber(t, e.Kafka, topic+"-group", cc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	consumed := make(chan struct{})
	go func() { defer close(consumed); consume(ta, ch, nil) }()

	start := time.Now()
	var next atomic.Int64
	var res pipelineResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || t.Failed() {
					return
				}
				msg := producerMessage(topic, seed, i)
				size := msg.Value.Length()
				if _, _, err := prod.SendMessageContext(ctx, msg); err != nil {
					t.Errorf("message %d (%d bytes): %v", i, size, err)
					return
				}
				mu.Lock()
				res.messages++
				res.bytes += int64(size)
				if size > claimcheck.DefaultThreshold {
					res.large++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ta.waitDistinct(t, n, timeout)
	res.elapsed = time.Since(start)
	// Anything still in flight would be a duplicate: give it a moment.
	time.Sleep(200 * time.Millisecond)
	closeWithin(t, "subscriber", 30*time.Second, sub.Close)
	cancel()
	<-consumed

	ta.report(t)
	if d, dup := ta.counts(); d != n || dup != 0 {
		t.Errorf("received %d distinct messages with %d duplicates, want %d and none", d, dup, n)
	}
	ps, cs := pcount.Snapshot(), ccount.Snapshot()
	if ps.Offloaded != int64(res.large) || cs.Rehydrated != int64(res.large) {
		t.Errorf("offloaded %d, rehydrated %d, want the %d large messages", ps.Offloaded, cs.Rehydrated, res.large)
	}
	if ps.OffloadFailures != 0 || cs.RehydrateFailures != 0 {
		t.Errorf("failures: %+v, %+v", ps, cs)
	}
	t.Logf("%s: %d messages (%d claim-checked), %.1f MiB, stored %.1f MiB, in %v (%.1f MiB/s)",
		e.Mode, n, res.large, float64(res.bytes)/(1<<20), float64(ps.StoredBytes)/(1<<20),
		res.elapsed.Round(time.Millisecond), float64(res.bytes)/(1<<20)/res.elapsed.Seconds())
	return res
}

// TestKafkaS3Watermill: sarama producer wrapper -> s3:// stash -> Kafka ->
// Watermill Kafka subscriber with the decorator.
func TestKafkaS3Watermill(t *testing.T) {
	kafkaScenario(t, func(t *testing.T, e *env) {
		// The broker keeps its 1 MiB limit: undecorated, a large message
		// does not get through, so the run below proves something.
		topic := uniqueName("refused")
		createTopic(t, e.Kafka, topic, 1)
		raw, err := sarama.NewSyncProducer(e.Kafka, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, _, err := raw.SendMessage(producerMessage(topic, 1, 0)); err == nil {
			t.Fatal("Kafka took a 32 MiB message undecorated")
		}
		res := runPipeline(t, e, 2*largeEvery, 2, 2*time.Minute)
		if res.large != 2 {
			t.Errorf("%d large messages, want 2", res.large)
		}
	})
}

// TestMixedVolume is the volume run: CLAIMSTASH_INTEGRATION_SCALE of
// 10,000 mixed-size messages (about 2 GiB at 1), every payload checked.
func TestMixedVolume(t *testing.T) {
	n := scaledMessages(t)
	kafkaScenario(t, func(t *testing.T, e *env) {
		runPipeline(t, e, n, 4, 30*time.Minute)
	})
}

// TestS3KilledMidRun kills the S3 server while a producer sends: sends
// that need the stash fail with a claim-check error and produce nothing,
// sends that do not still go through, and after the restart everything
// succeeds again. At the end every message in the topic rehydrates: no
// reference points at nothing.
func TestS3KilledMidRun(t *testing.T) {
	kafkaScenario(t, func(t *testing.T, e *env) {
		topic, bucket := uniqueName("s3kill"), uniqueName("s3kill")
		createTopic(t, e.Kafka, topic, 2)
		e.createBucket(t, bucket)
		pc, _ := s3Checker(t, e, bucket, 2)
		prod := newProducer(t, e.Kafka, pc)
		seed := uint64(time.Now().UnixNano())

		// Every third message is large (2 to 3 MiB, multipart at 8 MiB parts
		// is not needed to fail: any PUT will).
		const largeSize = 2<<20 + 12345
		sizeOf := func(i int) int {
			if i%3 == 0 {
				return largeSize + i
			}
			return 2048 + i
		}
		// An outcome is one send and when it ran. The test's verdicts go by
		// these times, not by when the test reads the outcome: the producer
		// keeps sending while the test kills and restarts the server, and
		// its outcomes queue up meanwhile.
		type outcome struct {
			i          int
			large      bool
			err        error
			start, end time.Time
		}
		results := make(chan outcome, 4096)
		stop := make(chan struct{})
		var sent sync.Map // index -> size, for messages Kafka acknowledged
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				msg := producerMessage(topic, seed, 1) // headers and key
				body := payload(seed, i)
				if len(body) < sizeOf(i) {
					body = append(body, make([]byte, sizeOf(i)-len(body))...)
				}
				body = body[:sizeOf(i)]
				msg.Value = sarama.ByteEncoder(body)
				msg.Headers[0].Value = []byte(itoa(i))
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				start := time.Now()
				_, _, err := prod.SendMessageContext(ctx, msg)
				end := time.Now()
				cancel()
				if err == nil {
					sent.Store(i, body)
				}
				results <- outcome{i, len(body) > claimcheck.DefaultThreshold, err, start, end}
			}
		}()
		defer func() { close(stop); wg.Wait() }()

		// The phases, by the clock. S3 is up before killing and from
		// restarted on (RestartS3 returns once the server serves S3
		// requests), and down from killed to restarting. A send that
		// overlaps KillS3 or RestartS3 may go either way; the producer sends
		// one message at a time, so at most one overlaps each.
		var killing, killed, restarting, restarted time.Time
		set := func(at time.Time) bool { return !at.IsZero() }
		var okLarge, okSmall, failLarge int
		var okSmallDown, failDown, okAfter, failAcross int
		var firstErr error
		record := func(o outcome) {
			t.Helper()
			startsDown := set(killed) && !o.start.Before(killed)
			endsDown := !set(restarting) || o.end.Before(restarting)
			startsAfter := set(restarted) && !o.start.Before(restarted)
			switch {
			case o.err == nil && o.large:
				okLarge++
				if startsDown && endsDown {
					t.Errorf("message %d (large) went through with S3 down", o.i)
				}
				if startsAfter {
					okAfter++
				}
			case o.err == nil:
				okSmall++
				if startsDown && endsDown {
					okSmallDown++
				}
			case o.large:
				failLarge++
				if firstErr == nil {
					firstErr = o.err
				}
				var ce *claimcheck.Error
				var se *stash.Error
				if !errors.As(o.err, &ce) || ce.Op != "offload" || !errors.As(o.err, &se) || se.Op != "create" {
					t.Errorf("message %d: error %v (%T) is not a claim-check offload error", o.i, o.err, o.err)
				}
				switch {
				case !set(killing) || o.end.Before(killing):
					t.Errorf("message %d (large) failed before the kill: %v", o.i, o.err)
				case startsAfter:
					t.Errorf("message %d (large) failed %v after the restart: %v",
						o.i, o.start.Sub(restarted).Round(time.Millisecond), o.err)
				case startsDown && endsDown:
					failDown++
				default:
					failAcross++ // overlapped the kill or the restart
				}
			default:
				t.Errorf("message %d (small, no stash needed) failed: %v", o.i, o.err)
			}
		}
		// waitFor records outcomes until cond says enough.
		waitFor := func(what string, d time.Duration, cond func() bool) {
			t.Helper()
			deadline := time.After(d)
			for !cond() {
				select {
				case o := <-results:
					record(o)
				case <-deadline:
					t.Fatalf("%s: not within %v (large ok %d failed %d, small ok %d)",
						what, d, okLarge, failLarge, okSmall)
				}
			}
		}
		waitFor("20 large sends before the kill", time.Minute, func() bool { return okLarge >= 20 })
		if t.Failed() {
			t.FailNow()
		}
		killing = time.Now()
		e.KillS3(t)
		killed = time.Now()
		t.Logf("S3 killed after %d large and %d small sends", okLarge, okSmall)
		waitFor("5 failed large sends while S3 is down", time.Minute, func() bool { return failDown >= 5 && okSmallDown >= 10 })
		t.Logf("while S3 was down: %d large sends failed, %d small ones went through; first error: %v",
			failDown, okSmallDown, firstErr)
		restarting = time.Now()
		e.RestartS3(t)
		restarted = time.Now()
		waitFor("20 large sends after the restart", 2*time.Minute, func() bool { return okAfter >= 20 })
		close(stop)
		wg.Wait()
		stop = make(chan struct{}) // for the deferred close
	drain:
		for {
			select {
			case o := <-results:
				record(o)
			default:
				break drain
			}
		}
		t.Logf("S3 restarted in %v; %d large sends that overlapped the kill or the restart failed",
			restarted.Sub(restarting).Round(time.Millisecond), failAcross)

		// Every message Kafka holds rehydrates, and it holds exactly those
		// whose send succeeded.
		want := okLarge + okSmall
		cc, ccount := s3Checker(t, e, bucket, 0)
		sub := newSubscriber(t, e.Kafka, topic+"-check", cc)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int{}
		deadline := time.After(2 * time.Minute)
		for len(got) < want {
			select {
			case m := <-ch:
				i := atoi(m.Metadata.Get("id"))
				body, ok := sent.Load(i)
				switch {
				case !ok:
					t.Errorf("message %d is in Kafka but its send failed", i)
				case string(body.([]byte)) != string(m.Payload):
					t.Errorf("message %d: payload differs (%d bytes, want %d)", i, len(m.Payload), len(body.([]byte)))
				}
				got[i]++
				m.Ack()
			case <-deadline:
				t.Fatalf("read back %d of %d messages; consumer %+v", len(got), want, ccount.Snapshot())
			}
		}
		select {
		case m := <-ch:
			t.Errorf("unexpected extra message %s", m.Metadata.Get("id"))
		case <-time.After(500 * time.Millisecond):
		}
		closeWithin(t, "subscriber", 30*time.Second, sub.Close)
		if s := ccount.Snapshot(); s.RehydrateFailures != 0 || s.Rehydrated != int64(okLarge) {
			t.Errorf("consumer %+v: want %d rehydrated, no failures", s, okLarge)
		}
		t.Logf("sent %d large and %d small, %d large refused; all %d read back", okLarge, okSmall, failLarge, want)
	})
}

// TestKafkaConsumerKilled stops a consumer mid-message while the producer
// keeps sending, and starts another in the same group: nothing is lost,
// the message the first consumer died on is delivered again, and the only
// duplicates are messages the first consumer had received (Kafka consumer
// groups are at-least-once).
func TestKafkaConsumerKilled(t *testing.T) {
	kafkaScenario(t, func(t *testing.T, e *env) {
		const n = 240 // every 6th message is claim-checked
		topic, bucket := uniqueName("ckill"), uniqueName("ckill")
		createTopic(t, e.Kafka, topic, 3)
		e.createBucket(t, bucket)
		pc, _ := s3Checker(t, e, bucket, 0)
		prod := newProducer(t, e.Kafka, pc)
		seed := uint64(time.Now().UnixNano())
		group := topic + "-group"
		body := func(i int) []byte {
			b := payload(seed, i)
			if i%6 == 0 {
				return append(b, make([]byte, 600<<10)...)
			}
			return b
		}

		sendDone := make(chan error, 1)
		go func() {
			for i := range n {
				msg := producerMessage(topic, seed, i)
				msg.Value = sarama.ByteEncoder(body(i))
				if _, _, err := prod.SendMessage(msg); err != nil {
					sendDone <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			sendDone <- nil
		}()

		// First consumer: dies on the first delivery of message killOn,
		// without acking it, so the group must deliver it again.
		const killOn = 60 // claim-checked
		first := &recorder{seed: seed, body: body}
		cc1, _ := s3Checker(t, e, bucket, 0)
		sub1 := newSubscriber(t, e.Kafka, group, cc1)
		ctx1, cancel1 := context.WithCancel(context.Background())
		ch1, err := sub1.Subscribe(ctx1, topic)
		if err != nil {
			t.Fatal(err)
		}
		died := make(chan bool, 1) // true: killed on killOn
		go func() {
			for m := range ch1 {
				first.record(t, m.Payload, m.Metadata.Get)
				if atoi(m.Metadata.Get("id")) == killOn {
					died <- true // killed mid-message: never acked
					return
				}
				m.Ack()
			}
			died <- false
		}()
		select {
		case killed := <-died:
			if !killed {
				t.Fatalf("first consumer's channel closed after %d messages, before message %d", first.total(), killOn)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("first consumer got %d messages, not message %d", first.total(), killOn)
		}
		cancel1()
		closeWithin(t, "first subscriber", time.Minute, sub1.Close)

		// Second consumer, same group, takes over.
		second := &recorder{seed: seed, body: body}
		cc2, ccount2 := s3Checker(t, e, bucket, 0)
		sub2 := newSubscriber(t, e.Kafka, group, cc2)
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		ch2, err := sub2.Subscribe(ctx2, topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-sendDone; err != nil {
			t.Fatalf("producer: %v", err)
		}
		// Every message has arrived, and the one the first consumer died
		// on has been delivered again.
		deadline := time.After(3 * time.Minute)
		for first.union(second) < n || second.count(killOn) == 0 {
			select {
			case m := <-ch2:
				second.record(t, m.Payload, m.Metadata.Get)
				m.Ack()
			case <-deadline:
				t.Fatalf("first consumer %d and second %d deliveries: %d of %d distinct; message %d redelivered %d times",
					first.total(), second.total(), first.union(second), n, killOn, second.count(killOn))
			}
		}
		select { // a duplicate arriving late still counts
		case m := <-ch2:
			second.record(t, m.Payload, m.Metadata.Get)
			m.Ack()
		case <-time.After(time.Second):
		}
		closeWithin(t, "second subscriber", time.Minute, sub2.Close)

		dups := 0
		for i, k := range second.seen {
			if k > 1 {
				t.Errorf("message %d delivered %d times to the second consumer", i, k)
			}
			if first.seen[i] > 0 {
				dups++
			}
		}
		if s := ccount2.Snapshot(); s.RehydrateFailures != 0 {
			t.Errorf("second consumer: %+v", s)
		}
		t.Logf("first consumer: %d deliveries (killed on message %d); second: %d; taken over from the first: %d; duplicates in all (at-least-once): %d; lost: 0",
			first.total(), killOn, second.total(), dups, first.total()+second.total()-n)
	})
}

// recorder counts one consumer's deliveries, checking each payload.
type recorder struct {
	seed uint64
	body func(int) []byte
	mu   sync.Mutex
	seen map[int]int
	last int
}

// count is how many times message i was delivered.
func (r *recorder) count(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[i]
}

func (r *recorder) record(t *testing.T, payload []byte, header func(string) string) int {
	i := atoi(header("id"))
	if want := r.body(i); string(want) != string(payload) {
		t.Errorf("message %d: %d bytes, not the %d sent", i, len(payload), len(want))
	}
	if header(claimcheck.HeaderVersion) != "" {
		t.Errorf("message %d: still claim-checked", i)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int]int{}
	}
	r.seen[i]++
	r.last = i
	return r.totalLocked()
}

func (r *recorder) totalLocked() int {
	n := 0
	for _, k := range r.seen {
		n += k
	}
	return n
}

func (r *recorder) total() int { r.mu.Lock(); defer r.mu.Unlock(); return r.totalLocked() }

func (r *recorder) union(o *recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(r.seen)
	for i := range o.seen {
		if _, ok := r.seen[i]; !ok {
			n++
		}
	}
	return n
}

func itoa(i int) string { return strconv.Itoa(i) }

// atoi parses a message index; -1 if it is not one.
func atoi(s string) int {
	i, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return i
}
