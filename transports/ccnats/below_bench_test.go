package ccnats_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/benchratio"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// belowEnv is what every below-threshold case shares: one server, one
// checker (default threshold: every body here passes through), the body.
type belowEnv struct {
	srv *natstest.Server
	// pub and sub are the connections both sides of a case use (each side
	// on its own subject), so that the two differ in the ccnats call only.
	pub, sub *nats.Conn
	cc       *claimcheck.Checker
	body     []byte
	hdr      nats.Header
}

// waiter counts handled messages and says when a batch is complete.
type waiter struct {
	n, want atomic.Int64
	done    chan struct{}
}

func newWaiter() *waiter { return &waiter{done: make(chan struct{}, 1)} }

func (w *waiter) hit() {
	if w.n.Add(1) == w.want.Load() {
		w.done <- struct{}{}
	}
}

func (w *waiter) wait(b *testing.B) {
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("handled %d of %d", w.n.Load(), w.want.Load())
	}
}

// asyncPath publishes a batch and waits until w has counted it. There is
// no Flush (a round trip to the server that both sides would pay, diluting
// the ratio): nats.go's flusher sends what is buffered.
func asyncPath(b *testing.B, w *waiter, publish func() error) benchratio.Path {
	return benchratio.Path{
		Prepare: func(int) {},
		Run: func(n int) {
			w.want.Add(int64(n))
			for range n {
				if err := publish(); err != nil {
					b.Fatal(err)
				}
			}
			w.wait(b)
		},
	}
}

// loopPath runs op n times.
func loopPath(b *testing.B, op func() error) benchratio.Path {
	return benchratio.Path{
		Prepare: func(int) {},
		Run: func(n int) {
			for range n {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
		},
	}
}

// must returns v, and panics (failing the benchmark) on an error: setup
// calls return two values, which b.Fatal cannot take in one expression.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ok(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func unsubscribeAtEnd(b *testing.B, s interface{ Unsubscribe() error }) {
	b.Cleanup(func() { _ = s.Unsubscribe() })
}

func wrapConn(b *testing.B, nc *nats.Conn, cc *claimcheck.Checker) *ccnats.WrappedConn {
	return must(ccnats.WrapConn(nc, cc))
}

// memStream makes a memory stream on subj that keeps the last 10000
// messages.
func memStream(b *testing.B, e *belowEnv, subj string) jetstream.Stream {
	js := e.srv.JetStream(b)
	return must(js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "S_" + subj, Subjects: []string{subj}, Storage: jetstream.MemoryStorage, MaxMsgs: 10000,
	}))
}

func pullConsumer(b *testing.B, s jetstream.Stream, name string) jetstream.Consumer {
	return must(s.CreateOrUpdateConsumer(context.Background(), jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
	}))
}

// belowCases: every ccnats path a message below the threshold takes, each
// as setup(decorated) on its own subject; the decorated and the plain path
// differ only in the ccnats call. Publishing cases receive with nats.go
// alone, receiving cases publish with nats.go alone.
var belowCases = []struct {
	name  string
	batch int
	setup func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path
}{
	// A/A: both sides plain, core publish to a callback; any "ratio" away
	// from 1 here is the benchmark's own noise.
	{"control", 100, func(b *testing.B, e *belowEnv, _ bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		unsubscribeAtEnd(b, must(sub.Subscribe(subj, func(*nats.Msg) { w.hit() })))
		ok(b, sub.Flush())
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	// Core NATS, publishing.
	{"conn-publish", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		unsubscribeAtEnd(b, must(sub.Subscribe(subj, func(*nats.Msg) { w.hit() })))
		ok(b, sub.Flush())
		publish := func() error { return pub.Publish(subj, e.body) }
		if dec {
			conn := must(ccnats.NewConn(pub, e.cc))
			ctx := context.Background()
			publish = func() error { return conn.Publish(ctx, subj, e.body) }
		}
		return asyncPath(b, w, publish)
	}},
	{"wrapconn-publish", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		unsubscribeAtEnd(b, must(sub.Subscribe(subj, func(*nats.Msg) { w.hit() })))
		ok(b, sub.Flush())
		publish := func() error { return pub.Publish(subj, e.body) }
		if dec {
			wc := wrapConn(b, pub, e.cc)
			publish = func() error { return wc.Publish(subj, e.body) }
		}
		return asyncPath(b, w, publish)
	}},
	{"wrapconn-publishmsg-header", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		unsubscribeAtEnd(b, must(sub.Subscribe(subj, func(*nats.Msg) { w.hit() })))
		ok(b, sub.Flush())
		m := &nats.Msg{Subject: subj, Header: e.hdr, Data: e.body}
		publish := func() error { return pub.PublishMsg(m) }
		if dec {
			wc := wrapConn(b, pub, e.cc)
			publish = func() error { return wc.PublishMsg(m) }
		}
		return asyncPath(b, w, publish)
	}},
	// The publish call alone, nothing received: the buffered write that
	// nats.go's Publish is, against the same with the checker's policy.
	{"wrapconn-publish-call", 200, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		nc := e.pub
		publish := func() error { return nc.Publish(subj, e.body) }
		if dec {
			wc := wrapConn(b, nc, e.cc)
			publish = func() error { return wc.Publish(subj, e.body) }
		}
		p := loopPath(b, publish)
		run := p.Run
		p.Run = func(n int) { run(n); ok(b, nc.Flush()) }
		return p
	}},
	{"wrapconn-request", 50, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		nc, responder := e.pub, e.sub
		unsubscribeAtEnd(b, must(responder.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(m.Data) })))
		ok(b, responder.Flush())
		request := nc.Request
		if dec {
			request = wrapConn(b, nc, e.cc).Request
		}
		return loopPath(b, func() error { _, err := request(subj, e.body, 10*time.Second); return err })
	}},
	// Core NATS, receiving.
	{"msghandler", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		h := func(*nats.Msg) { w.hit() }
		if dec {
			h = ccnats.MsgHandler(e.cc, h)
		}
		unsubscribeAtEnd(b, must(sub.Subscribe(subj, h)))
		ok(b, sub.Flush())
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	{"wrapconn-subscribe", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		h := func(*nats.Msg) { w.hit() }
		if dec {
			unsubscribeAtEnd(b, must(wrapConn(b, sub, e.cc).Subscribe(subj, h)))
		} else {
			unsubscribeAtEnd(b, must(sub.Subscribe(subj, h)))
		}
		ok(b, sub.Flush())
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	{"wrapconn-queuesubscribe", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		h := func(*nats.Msg) { w.hit() }
		if dec {
			unsubscribeAtEnd(b, must(wrapConn(b, sub, e.cc).QueueSubscribe(subj, "q", h)))
		} else {
			unsubscribeAtEnd(b, must(sub.QueueSubscribe(subj, "q", h)))
		}
		ok(b, sub.Flush())
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	// A channel subscription: nats.go's reading goroutine sends to the
	// channel itself; the wrapper must run code first, so it subscribes a
	// callback that sends: one goroutine hand-off more, by construction.
	{"wrapconn-chansubscribe", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		ch, stop := make(chan *nats.Msg, 1024), make(chan struct{})
		go func() {
			for {
				select {
				case <-ch:
					w.hit()
				case <-stop:
					return
				}
			}
		}()
		b.Cleanup(func() { close(stop) })
		if dec {
			unsubscribeAtEnd(b, must(wrapConn(b, sub, e.cc).ChanSubscribe(subj, ch)))
		} else {
			unsubscribeAtEnd(b, must(sub.ChanSubscribe(subj, ch)))
		}
		ok(b, sub.Flush())
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	// The zero-hand-off way to read a channel: nats.go's own
	// ChanSubscribe, and WrappedConn.Rehydrate in the reader.
	{"wrapconn-chansubscribe-rehydrate", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub, w := e.pub, e.sub, newWaiter()
		wc := wrapConn(b, sub, e.cc)
		ch, stop := make(chan *nats.Msg, 1024), make(chan struct{})
		ctx := context.Background()
		go func() {
			for {
				select {
				case m := <-ch:
					if dec {
						if err := wc.Rehydrate(ctx, m); err != nil {
							b.Error(err)
						}
					}
					w.hit()
				case <-stop:
					return
				}
			}
		}()
		b.Cleanup(func() { close(stop) })
		unsubscribeAtEnd(b, must(sub.ChanSubscribe(subj, ch)))
		ok(b, sub.Flush())
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	{"wrapconn-nextmsg", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		pub, sub := e.pub, e.sub
		var next func(time.Duration) (*nats.Msg, error)
		if dec {
			s := must(wrapConn(b, sub, e.cc).SubscribeSync(subj))
			unsubscribeAtEnd(b, s)
			ok(b, s.SetPendingLimits(-1, -1))
			next = s.NextMsg
		} else {
			s := must(sub.SubscribeSync(subj))
			unsubscribeAtEnd(b, s)
			ok(b, s.SetPendingLimits(-1, -1))
			next = s.NextMsg
		}
		ok(b, sub.Flush())
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, pub.Publish(subj, e.body))
			}
			for range n {
				must(next(10 * time.Second))
			}
		}}
	}},
	// Legacy JetStream (nc.JetStream()), publishing.
	{"js-legacy-publish", 50, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		nc := e.pub
		js := must(nc.JetStream())
		publish := func() error { _, err := js.Publish(subj, e.body); return err }
		if dec {
			wjs := must(wrapConn(b, nc, e.cc).JetStream())
			publish = func() error { _, err := wjs.Publish(subj, e.body); return err }
		}
		return loopPath(b, publish)
	}},
	{"js-legacy-publishasync", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		nc := e.pub
		js := must(nc.JetStream())
		publish := func() error { _, err := js.PublishAsync(subj, e.body); return err }
		complete := js.PublishAsyncComplete
		if dec {
			wjs := must(wrapConn(b, nc, e.cc).JetStream())
			publish = func() error { _, err := wjs.PublishAsync(subj, e.body); return err }
			complete = wjs.PublishAsyncComplete
		}
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, publish())
			}
			select {
			case <-complete():
			case <-time.After(30 * time.Second):
				b.Fatal("async publishes not acknowledged")
			}
		}}
	}},
	// Legacy JetStream, receiving (each message acknowledged).
	{"js-legacy-subscribe", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		pub, sub, w := e.pub, e.sub, newWaiter()
		h := func(*nats.Msg) { w.hit() } // acknowledged by nats.go after h
		if dec {
			wjs := must(wrapConn(b, sub, e.cc).JetStream())
			unsubscribeAtEnd(b, must(wjs.Subscribe(subj, h, nats.DeliverNew())))
		} else {
			js := must(sub.JetStream())
			unsubscribeAtEnd(b, must(js.Subscribe(subj, h, nats.DeliverNew())))
		}
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	{"js-legacy-fetch", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		pub, sub := e.pub, e.sub
		var fetch func(int, ...nats.PullOpt) ([]*nats.Msg, error)
		if dec {
			wjs := must(wrapConn(b, sub, e.cc).JetStream())
			s := must(wjs.PullSubscribe(subj, "d"+subj))
			unsubscribeAtEnd(b, s)
			fetch = s.Fetch
		} else {
			js := must(sub.JetStream())
			s := must(js.PullSubscribe(subj, "d"+subj))
			unsubscribeAtEnd(b, s)
			fetch = s.Fetch
		}
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, pub.Publish(subj, e.body))
			}
			for got := 0; got < n; {
				for _, m := range must(fetch(min(n-got, 100), nats.MaxWait(10*time.Second))) {
					ok(b, m.Ack())
					got++
				}
			}
		}}
	}},
	// FetchBatch's channel is filled by a goroutine of the wrapper's: one
	// hand-off more, by construction.
	{"js-legacy-fetchbatch", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		pub, sub := e.pub, e.sub
		var fetch func(int, ...nats.PullOpt) (nats.MessageBatch, error)
		if dec {
			wjs := must(wrapConn(b, sub, e.cc).JetStream())
			s := must(wjs.PullSubscribe(subj, "d"+subj))
			unsubscribeAtEnd(b, s)
			fetch = s.FetchBatch
		} else {
			js := must(sub.JetStream())
			s := must(js.PullSubscribe(subj, "d"+subj))
			unsubscribeAtEnd(b, s)
			fetch = s.FetchBatch
		}
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, pub.Publish(subj, e.body))
			}
			for got := 0; got < n; {
				batch := must(fetch(min(n-got, 100), nats.MaxWait(10*time.Second)))
				for m := range batch.Messages() {
					ok(b, m.Ack())
					got++
				}
				ok(b, batch.Error())
			}
		}}
	}},
	// JetStream (the jetstream package), publishing.
	{"js-publish", 50, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		var js jetstream.JetStream = must(jetstream.New(e.pub))
		if dec {
			js = must(ccnats.NewJetStream(js, e.cc))
		}
		ctx := context.Background()
		return loopPath(b, func() error { _, err := js.Publish(ctx, subj, e.body); return err })
	}},
	{"js-publishasync", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		memStream(b, e, subj)
		raw := must(jetstream.New(e.pub))
		js := raw
		if dec {
			js = must(ccnats.NewJetStream(raw, e.cc))
		}
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				_, err := js.PublishAsync(subj, e.body)
				ok(b, err)
			}
			select {
			case <-raw.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				b.Fatal("async publishes not acknowledged")
			}
		}}
	}},
	// JetStream (the jetstream package), receiving (each message acked).
	{"js-consume", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		c := pullConsumer(b, memStream(b, e, subj), "d"+subj)
		pub, w := e.pub, newWaiter()
		h := func(m jetstream.Msg) { _ = m.Ack(); w.hit() }
		if dec {
			h = ccnats.MessageHandler(e.cc, h)
		}
		cctx := must(c.Consume(h))
		b.Cleanup(cctx.Stop)
		return asyncPath(b, w, func() error { return pub.Publish(subj, e.body) })
	}},
	{"js-messages", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		c := pullConsumer(b, memStream(b, e, subj), "d"+subj)
		pub := e.pub
		it := must(c.Messages())
		b.Cleanup(it.Stop)
		if dec {
			it = ccnats.Messages(e.cc, it)
		}
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, pub.Publish(subj, e.body))
			}
			for range n {
				ok(b, must(it.Next()).Ack())
			}
		}}
	}},
	// Fetch's batch is a channel that jetstream fills; Batch reads it in
	// a goroutine of its own and hands each message on: one hand-off
	// more, by construction.
	{"js-fetch-batch", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		c := pullConsumer(b, memStream(b, e, subj), "d"+subj)
		pub := e.pub
		ctx := context.Background()
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, pub.Publish(subj, e.body))
			}
			for got := 0; got < n; {
				batch := must(c.Fetch(min(n-got, 100), jetstream.FetchMaxWait(10*time.Second)))
				if dec {
					batch = ccnats.Batch(ctx, e.cc, batch)
				}
				for m := range batch.Messages() {
					ok(b, m.Ack())
					got++
				}
				ok(b, batch.Error())
			}
		}}
	}},
	// The zero-hand-off way to read a batch: jetstream's channel, and
	// Rehydrate in the reader.
	{"js-fetch-rehydrate", 100, func(b *testing.B, e *belowEnv, dec bool, subj string) benchratio.Path {
		c := pullConsumer(b, memStream(b, e, subj), "d"+subj)
		pub := e.pub
		ctx := context.Background()
		return benchratio.Path{Prepare: func(int) {}, Run: func(n int) {
			for range n {
				ok(b, pub.Publish(subj, e.body))
			}
			for got := 0; got < n; {
				batch := must(c.Fetch(min(n-got, 100), jetstream.FetchMaxWait(10*time.Second)))
				for m := range batch.Messages() {
					if dec {
						m = must(ccnats.Rehydrate(ctx, e.cc, m))
					}
					ok(b, m.Ack())
					got++
				}
				ok(b, batch.Error())
			}
		}}
	}},
}

// BenchmarkBelowThreshold measures every ccnats path a message below the
// threshold takes against the same path in nats.go alone, interleaved in
// batches on one embedded server in one run (see interleave: "ratio" is
// the target's figure, <= 1.02; "extra-allocs/msg" should be 0). The body
// is 1 KiB; the header case carries one header.
func BenchmarkBelowThreshold(b *testing.B) {
	for _, tc := range belowCases {
		b.Run(tc.name, func(b *testing.B) {
			cc, _ := newChecker(b)
			srv := natstest.Start(b)
			e := &belowEnv{srv: srv, pub: srv.Connect(b), sub: srv.Connect(b), cc: cc, body: payload(1<<10, 1), hdr: nats.Header{"traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}
			plain := tc.setup(b, e, false, "plain")
			dec := tc.setup(b, e, true, "dec")
			benchratio.Interleave(b, tc.batch, plain, dec)
		})
	}
}
