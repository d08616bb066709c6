package otelstash_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// TestBackends runs the same pipeline over each backend, real servers for
// S3 (MinIO) and NATS, and checks the same telemetry: a new backend needs
// no code of its own to be covered.
func TestBackends(t *testing.T) {
	backends := []struct {
		scheme string
		make   func(t *testing.T) driver.Driver
	}{
		{memstash.Scheme, func(*testing.T) driver.Driver { return memstash.New() }},
		{filestash.Scheme, func(t *testing.T) driver.Driver {
			s, err := filestash.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{s3stash.Scheme, func(t *testing.T) driver.Driver {
			srv := miniotest.Start(t, "default")
			s, err := s3stash.New(srv.Client(), s3stash.WithBuckets("default"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{natsstash.Scheme, func(t *testing.T) driver.Driver {
			srv := natstest.Start(t)
			s, err := natsstash.New(srv.JetStream(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, b := range backends {
		t.Run(b.scheme, func(t *testing.T) {
			tm := newTelemetry(t)
			ctx := context.Background()
			d := b.make(t)
			t.Cleanup(func() { _ = d.Close() })
			_, linkOpts, err := links.EngineOptions([]links.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}, "https://stash.example/share/")
			if err != nil {
				t.Fatal(err)
			}
			e, err := stash.New(append([]stash.Option{stash.WithBackend(d), tm.inst.EngineOption()}, linkOpts...)...)
			if err != nil {
				t.Fatal(err)
			}
			c, err := claimcheck.New(e, claimcheck.WithThreshold(4<<10), tm.inst.CheckerOption())
			if err != nil {
				t.Fatal(err)
			}
			scheme := otelstash.KeyScheme.String(b.scheme)
			bodies := [][]byte{random(64 << 10), bytes.Repeat([]byte("x"), 64<<10), []byte("small")}
			type msg struct {
				body []byte
				h    claimcheck.MapHeaders
			}
			var msgs []msg
			for _, body := range bodies {
				h := claimcheck.MapHeaders{}
				out, _, err := c.Offload(ctx, "orders", body, h)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, msg{out, h})
			}
			for k, m := range msgs {
				got, _, err := c.Rehydrate(ctx, "orders", m.body, m.h)
				if err != nil || !bytes.Equal(got, bodies[k]) {
					t.Fatalf("rehydrate %d: %v", k, err)
				}
			}
			addr := string(msgs[0].body)
			st, err := e.Stat(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			offloads := tm.ended("offload orders")
			if len(offloads) != 2 {
				t.Fatalf("%d offload spans, want 2 (%s)", len(offloads), tm.names())
			}
			if got, want := st.Metadata[otelstash.MetadataTraceID], offloads[0].SpanContext().TraceID().String(); got != want {
				t.Errorf("stash metadata trace id %q, want the offload's %s", got, want)
			}
			if _, err := e.Share(ctx, addr, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := e.Delete(ctx, addr); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Sweep(ctx); err != nil {
				t.Fatal(err)
			}

			puts := tm.ended(b.scheme + " put")
			creates := tm.ended("stash create")
			if len(puts) != 2 || len(creates) != 2 {
				t.Fatalf("%d puts, %d creates, want 2 each (%s)", len(puts), len(creates), tm.names())
			}
			for k := range 2 {
				childOf(t, creates[k], offloads[k])
				childOf(t, puts[k], creates[k])
				if got := attr(puts[k], otelstash.KeyScheme).AsString(); got != b.scheme {
					t.Errorf("put scheme %q", got)
				}
				if got := attr(creates[k], otelstash.KeyNamespace).AsString(); got != "default" {
					t.Errorf("create namespace %q", got)
				}
			}
			if got := attr(creates[1], otelstash.KeyEncoding).AsString(); got != "zstd" {
				t.Errorf("encoding %q, want zstd", got)
			}
			if got := attr(creates[0], otelstash.KeyStoredSize).AsInt64(); got != 64<<10 {
				t.Errorf("stored size of random bytes %d, want %d", got, 64<<10)
			}
			for _, op := range []string{stash.OpRetrieve, stash.OpStat, stash.OpShare, stash.OpDelete} {
				if n := len(tm.ended("stash " + op)); n == 0 {
					t.Errorf("no stash %s span", op)
				}
			}
			for _, call := range []string{otelstash.CallPut, otelstash.CallGet, otelstash.CallStat, otelstash.CallDelete} {
				if n, _ := tm.hist(t, otelstash.MetricBackendDuration, scheme, otelstash.KeyBackendCall.String(call), outcome(otelstash.OutcomeOK)); n == 0 {
					t.Errorf("no %s latency for %s", call, b.scheme)
				}
			}
			if n, _ := tm.hist(t, otelstash.MetricBackendDuration, scheme, otelstash.KeyBackendCall.String(otelstash.CallPut)); n != 2 {
				t.Errorf("%d put latencies, want 2", n)
			}
			if got := tm.sum(t, otelstash.MetricMessages, opOffload, scheme, outcome(otelstash.OutcomeOffloaded)); got != 2 {
				t.Errorf("offloaded to %s: %d, want 2", b.scheme, got)
			}
			if got := tm.sum(t, otelstash.MetricMessages, opOffload, outcome(otelstash.OutcomePassed)); got != 1 {
				t.Errorf("passed: %d, want 1", got)
			}
			if got := tm.sum(t, otelstash.MetricRehydratePayload, scheme); got != 128<<10 {
				t.Errorf("rehydrated bytes %d, want %d", got, 128<<10)
			}
			if got := tm.sum(t, otelstash.MetricShareLinks, outcome(otelstash.OutcomeIssued), scheme); got != 1 {
				t.Errorf("links issued: %d, want 1", got)
			}
			if n, _ := tm.hist(t, otelstash.MetricStashDuration, scheme, otelstash.KeyStashOp.String(stash.OpCreate), outcome(otelstash.OutcomeOK)); n != 2 {
				t.Errorf("%d create latencies, want 2", n)
			}
			if _, isSigner := d.(driver.Signer); isSigner && len(tm.ended(b.scheme+" sign")) != 1 {
				t.Errorf("%s presigns, but no sign span", b.scheme)
			}
			if _, isLister := d.(driver.Lister); isLister && len(tm.ended(b.scheme+" list")) != 1 {
				t.Errorf("%s lists, but no list span", b.scheme)
			}
		})
	}
}
