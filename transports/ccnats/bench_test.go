package ccnats_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// BenchmarkClaimCheck8MiB sends 8 MiB messages through a server with the
// default 1 MiB max_payload, one at a time, publish to handler: offload
// (hash, compression attempt, stash write), publish, rehydrate (stash read,
// verify) and, with claimcheck.DeleteAfterAck, delete, so the store does not
// grow. Each body differs (stashes are content-addressed: a repeat would be
// deduplicated).
func BenchmarkClaimCheck8MiB(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B, srv *natstest.Server) stash.Option
	}{
		{"nats", func(b *testing.B, srv *natstest.Server) stash.Option {
			st, err := natsstash.New(srv.JetStream(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			return stash.WithBackend(st)
		}},
		{"file", func(b *testing.B, _ *natstest.Server) stash.Option {
			st, err := filestash.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return stash.WithBackend(st)
		}},
		{"mem", func(b *testing.B, _ *natstest.Server) stash.Option {
			return stash.WithBackend(memstash.New())
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			srv := natstest.Start(b)
			eng, err := stash.New(be.open(b, srv))
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			// An iteration ends when the stash is deleted (after the
			// handler returns), so the last delete never races the
			// benchmark's teardown closing the connection.
			deleted := make(chan error, 1)
			got := make(chan int, 1)
			cc, err := claimcheck.New(eng, claimcheck.DeleteAfterAck(),
				claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
					if ev.Op == claimcheck.OpDelete {
						deleted <- ev.Err
					}
					if ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
						b.Error(ev.Err)
						got <- -1
					}
				})))
			if err != nil {
				b.Fatal(err)
			}
			conn, err := ccnats.NewConn(srv.Connect(b), cc)
			if err != nil {
				b.Fatal(err)
			}
			sub, err := conn.Subscribe("bench", func(m *nats.Msg) { got <- len(m.Data) })
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := conn.NATS().Flush(); err != nil {
				b.Fatal(err)
			}
			body := payload(8<<20, 8)
			ctx := context.Background()
			b.SetBytes(int64(len(body)))
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint64(body, uint64(i))
				if err := conn.Publish(ctx, "bench", body); err != nil {
					b.Fatal(err)
				}
				select {
				case n := <-got:
					if n != len(body) {
						b.Fatalf("received %d bytes", n)
					}
				case <-time.After(30 * time.Second):
					b.Fatal("nothing received")
				}
				select {
				case err := <-deleted:
					if err != nil {
						b.Fatalf("delete after handling: %v", err)
					}
				case <-time.After(30 * time.Second):
					b.Fatal("stash not deleted")
				}
			}
		})
	}
}

const overheadBatch = 1000

// smallPipe publishes batches of 256-byte messages (below the threshold) on
// a core subscription and waits for each batch to be handled: raw nats.go,
// or through Conn.Publish and MsgHandler.
type smallPipe struct {
	publish func() error
	flush   func() error
	count   atomic.Int64
	done    chan struct{}
	want    atomic.Int64
}

func newSmallPipe(b *testing.B, wrapped bool) *smallPipe {
	srv := natstest.Start(b)
	pubNC, subNC := srv.Connect(b), srv.Connect(b)
	cc, _ := newChecker(b)
	p := &smallPipe{done: make(chan struct{}, 1)}
	h := func(*nats.Msg) {
		if p.count.Add(1) == p.want.Load() {
			p.done <- struct{}{}
		}
	}
	body := payload(256, 1)
	if wrapped {
		conn, err := ccnats.NewConn(pubNC, cc)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		p.publish = func() error { return conn.Publish(ctx, "small", body) }
		h = ccnats.MsgHandler(cc, h)
	} else {
		p.publish = func() error { return pubNC.Publish("small", body) }
	}
	p.flush = pubNC.Flush
	sub, err := subNC.Subscribe("small", h)
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := subNC.Flush(); err != nil {
		b.Fatal(err)
	}
	return p
}

// batch sends overheadBatch messages and waits until all are handled.
func (p *smallPipe) batch(b *testing.B) {
	p.want.Add(overheadBatch)
	for range overheadBatch {
		if err := p.publish(); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.flush(); err != nil {
		b.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("handled %d of %d", p.count.Load(), p.want.Load())
	}
}

// BenchmarkBelowThreshold measures batches of 1000 small messages, raw and
// wrapped; ns/op is per batch.
func BenchmarkBelowThreshold(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		name := "raw"
		if wrapped {
			name = "wrapped"
		}
		b.Run(name, func(b *testing.B) {
			p := newSmallPipe(b, wrapped)
			for b.Loop() {
				p.batch(b)
			}
		})
	}
}

// BenchmarkBelowThresholdRatio alternates raw and wrapped batches on two
// servers in the same run and reports wrapped time / raw time as "ratio"
// (1.00 = no overhead).
func BenchmarkBelowThresholdRatio(b *testing.B) {
	raw, wrapped := newSmallPipe(b, false), newSmallPipe(b, true)
	var tRaw, tWrapped time.Duration
	for b.Loop() {
		t0 := time.Now()
		raw.batch(b)
		t1 := time.Now()
		wrapped.batch(b)
		tRaw += t1.Sub(t0)
		tWrapped += time.Since(t1)
	}
	b.ReportMetric(float64(tWrapped)/float64(tRaw), "ratio")
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N*overheadBatch), "raw-ns/msg")
	b.ReportMetric(float64(tWrapped.Nanoseconds())/float64(b.N*overheadBatch), "wrapped-ns/msg")
}
