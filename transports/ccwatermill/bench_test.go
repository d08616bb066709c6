package ccwatermill_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// pipe is one publish-to-handler path over a Go channel: Send publishes a
// message and returns once the handler has it (and has acked it).
type pipe struct {
	pub  message.Publisher
	got  chan *message.Message
	stop func()
}

func newPipe(b *testing.B, c *claimcheck.Checker) *pipe {
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	var pub message.Publisher = gc
	var sub message.Subscriber = gc
	if c != nil {
		pub, sub = ccwatermill.NewPublisher(gc, c), ccwatermill.NewSubscriber(gc, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	p := &pipe{pub: pub, got: make(chan *message.Message)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			m.Ack()
			p.got <- m
		}
	}()
	p.stop = func() {
		cancel()
		_ = sub.Close()
		_ = gc.Close()
		<-done
	}
	return p
}

func (p *pipe) send(b *testing.B, m *message.Message) *message.Message {
	if err := p.pub.Publish("bench", m); err != nil {
		b.Fatal(err)
	}
	return <-p.got
}

func smallMessage() *message.Message {
	m := message.NewMessage("id", make([]byte, 1024))
	m.Metadata.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	return m
}

// BenchmarkBelowThreshold measures the decorated publish-to-handler path of
// a 1 KiB message against the undecorated one, interleaved in short batches
// in the same run (a load spike from another process hits both), and
// reports the median of the per-pair ratios ("ratio"; target <= 1.02), the
// ratio of the totals ("ratio-total") and the allocations the decorators
// add per message (target 0).
func BenchmarkBelowThreshold(b *testing.B) {
	c, _ := newChecker(b)
	plain, decorated := newPipe(b, nil), newPipe(b, c)
	defer plain.stop()
	defer decorated.stop()
	const batch = 25
	var tPlain, tDec time.Duration
	var aPlain, aDec uint64
	var ms runtime.MemStats
	msgs := make([]*message.Message, batch)
	run := func(p *pipe, d *time.Duration, allocs *uint64) time.Duration {
		for i := range msgs {
			msgs[i] = smallMessage()
		}
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		start := time.Now()
		for _, m := range msgs {
			p.send(b, m)
		}
		t := time.Since(start)
		*d += t
		runtime.ReadMemStats(&ms)
		*allocs += ms.Mallocs - before
		return t
	}
	// Warm both paths up.
	run(plain, new(time.Duration), new(uint64))
	run(decorated, new(time.Duration), new(uint64))
	b.ResetTimer()
	rounds := max(1, b.N/batch)
	ratios := make([]float64, 0, rounds)
	for r := range rounds {
		var tp, td time.Duration
		if r%2 == 0 {
			tp = run(plain, &tPlain, &aPlain)
			td = run(decorated, &tDec, &aDec)
		} else {
			td = run(decorated, &tDec, &aDec)
			tp = run(plain, &tPlain, &aPlain)
		}
		ratios = append(ratios, float64(td)/float64(tp))
	}
	slices.Sort(ratios)
	n := float64(rounds * batch)
	b.ReportMetric(float64(tPlain.Nanoseconds())/n, "ns/msg-plain")
	b.ReportMetric(float64(tDec.Nanoseconds())/n, "ns/msg-decorated")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
	b.ReportMetric(float64(tDec)/float64(tPlain), "ratio-total")
	b.ReportMetric(float64(aPlain)/n, "allocs/msg-plain")
	b.ReportMetric((float64(aDec)-float64(aPlain))/n, "extra-allocs/msg")
}

// BenchmarkPublishToHandler is the same path as separate benchmarks, for
// benchstat and -benchmem.
func BenchmarkPublishToHandler(b *testing.B) {
	for _, decorated := range []bool{false, true} {
		name := "plain"
		var c *claimcheck.Checker
		if decorated {
			name = "decorated"
			c, _ = newChecker(b)
		}
		b.Run(name, func(b *testing.B) {
			p := newPipe(b, c)
			defer p.stop()
			msgs := make([]*message.Message, b.N)
			for i := range msgs {
				msgs[i] = smallMessage()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p.send(b, msgs[i])
			}
		})
	}
}

// BenchmarkAboveThreshold reports msgs/s and MB/s for claim-checked
// messages through a Go channel, with the mem and file backends, and the
// ratio of that throughput to the engine's own Create+Retrieve measured in
// the same run (1.0 would mean the transport adds nothing).
func BenchmarkAboveThreshold(b *testing.B) {
	backends := []struct {
		name   string
		scheme string
		open   func(b *testing.B) stash.Option
	}{
		{"mem", memstash.Scheme, func(b *testing.B) stash.Option { return stash.WithBackend(memstash.New()) }},
		{"file", filestash.Scheme, func(b *testing.B) stash.Option {
			s, err := filestash.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return stash.WithBackend(s)
		}},
	}
	for _, be := range backends {
		for _, size := range []int{1 << 20, 16 << 20} {
			b.Run(be.name+"/"+strconv.Itoa(size>>20)+"MiB", func(b *testing.B) {
				e, err := stash.New(be.open(b))
				if err != nil {
					b.Fatal(err)
				}
				var last atomic.Value
				c, err := claimcheck.New(e, claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
					if ev.Op == claimcheck.OpOffload {
						last.Store(ev.Address)
					}
				})))
				if err != nil {
					b.Fatal(err)
				}
				p := newPipe(b, c)
				defer p.stop()
				payload := make([]byte, size)
				rng := rand.New(rand.NewPCG(uint64(size), 7))
				for i := 0; i+8 <= size; i += 8 {
					binary.LittleEndian.PutUint64(payload[i:], rng.Uint64())
				}
				ctx := context.Background()
				var tPipe, tEngine time.Duration
				seq := uint64(0)
				// Every message is new content: the engine would otherwise
				// find it stored already and skip the write.
				fresh := func() []byte {
					seq++
					binary.LittleEndian.PutUint64(payload, seq)
					return payload
				}
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					// The transport path.
					m := message.NewMessage("id", fresh())
					start := time.Now()
					got := p.send(b, m)
					tPipe += time.Since(start)
					b.StopTimer()
					if len(got.Payload) != size {
						b.Fatalf("handler got %d bytes", len(got.Payload))
					}
					_ = e.Delete(ctx, last.Load().(string))
					// The engine alone.
					start = time.Now()
					s, err := e.Create(ctx, "bench", fresh(), stash.NoInline())
					if err != nil {
						b.Fatal(err)
					}
					if _, err := e.Retrieve(ctx, s.Address.String()); err != nil {
						b.Fatal(err)
					}
					tEngine += time.Since(start)
					_ = e.Delete(ctx, s.Address.String())
					b.StartTimer()
				}
				n := float64(b.N)
				b.ReportMetric(n/tPipe.Seconds(), "msgs/s")
				b.ReportMetric(n*float64(size)/tPipe.Seconds()/1e6, "MB/s-pipe")
				b.ReportMetric(n*float64(size)/tEngine.Seconds()/1e6, "MB/s-engine")
				b.ReportMetric(tEngine.Seconds()/tPipe.Seconds(), "ratio-to-engine")
			})
		}
	}
}
