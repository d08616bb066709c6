package peerbench_test

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// BenchmarkPeer sends one claim-checked message and receives it, rehydrated
// and verified, through claimstash (claimcheck over a mem stash, SHA-256
// verified, the reference over mempubsub) and through a Go CDK model (the
// payload written raw to memblob with its MD5, the key over mempubsub,
// ReadAll and an MD5 check), alternately in one loop, so a load spike hits
// both. The clock runs for the claim-check work on both sides (offload,
// rehydrate, verify) and stops for the mempubsub hop, which is the same for
// both and dominated by mempubsub's receive polling (a hundred milliseconds
// or so), so that it does not drown the difference; "ns/op" therefore
// includes that hop, the MB/s metrics do not. Every message is new content
// (claimstash would otherwise find it stored and skip the write). "ratio"
// is the Go CDK model's time over claimstash's, from the totals (above 1:
// claimstash is ahead), and "ratio-median" the median of that ratio over
// batches of at least eight pairs, the figure to read on a loaded machine;
// "x-smaller" what claimstash stored against the payload.
//
//	go test -run '^$' -bench Peer -benchtime 200ms -count 3 ./internal/peerbench/
func BenchmarkPeer(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20, 8 << 20} {
		for _, kind := range []string{"random", "json"} {
			comps := []stash.Compression{stash.CompressionAuto}
			if kind == "json" {
				comps = []stash.Compression{stash.CompressionNone, stash.CompressionAuto}
			}
			for _, comp := range comps {
				name := fmt.Sprintf("%s/%s", sizeName(size), kind)
				if kind == "json" {
					name += map[stash.Compression]string{stash.CompressionNone: "/compression-off", stash.CompressionAuto: "/compression-on"}[comp]
				}
				b.Run(name, func(b *testing.B) { benchPeer(b, size, kind, comp) })
			}
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

func benchPeer(b *testing.B, size int, kind string, comp stash.Compression) {
	ctx := context.Background()
	payload := stashtest.RandomPayload(size, 1)
	if kind == "json" {
		payload = stashtest.JSONPayload(size, 1)
	}
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	cc, err := claimcheck.New(e, claimcheck.WithMode(claimcheck.Always), claimcheck.WithStashOptions(stash.Compress(comp)))
	if err != nil {
		b.Fatal(err)
	}
	cs := newPipe(ctx)
	defer cs.close()
	cdk := newPipe(ctx)
	defer cdk.close()
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()

	var tCS, tCDK time.Duration
	var stored int64
	seq := uint64(0)
	fresh := func() []byte {
		seq++
		binary.LittleEndian.PutUint64(payload, seq) // a new first 8 bytes: new content
		return payload
	}
	claimstashOnce := func() {
		body := fresh()
		start := time.Now()
		h := claimcheck.MapHeaders{}
		out, addr, err := cc.Offload(ctx, "bench", body, h)
		if err != nil {
			b.Fatal(err)
		}
		tCS += time.Since(start)
		m := cs.roundTrip(b, &pubsub.Message{Body: out, Metadata: h})
		start = time.Now()
		got, _, err := cc.Rehydrate(ctx, "bench", m.Body, claimcheck.MapHeaders(m.Metadata))
		m.Ack()
		tCS += time.Since(start)
		if err != nil || len(got) != size {
			b.Fatalf("claimstash: %d bytes, %v", len(got), err)
		}
		b.StopTimer()
		if st, err := e.Stat(ctx, addr); err == nil {
			stored = st.StoredSize
		}
		_ = e.Delete(ctx, addr)
		b.StartTimer()
	}
	cdkOnce := func() {
		body := fresh()
		start := time.Now()
		sum := md5.Sum(body)
		key := fmt.Sprintf("bench/%d", seq)
		if err := bucket.WriteAll(ctx, key, body, &blob.WriterOptions{ContentMD5: sum[:]}); err != nil {
			b.Fatal(err)
		}
		tCDK += time.Since(start)
		m := cdk.roundTrip(b, &pubsub.Message{Body: []byte(key), Metadata: map[string]string{"md5": hex.EncodeToString(sum[:])}})
		start = time.Now()
		got, err := bucket.ReadAll(ctx, string(m.Body))
		if err == nil {
			if s := md5.Sum(got); hex.EncodeToString(s[:]) != m.Metadata["md5"] {
				err = fmt.Errorf("md5 mismatch")
			}
		}
		m.Ack()
		tCDK += time.Since(start)
		if err != nil || len(got) != size {
			b.Fatalf("cdk: %d bytes, %v", len(got), err)
		}
		b.StopTimer()
		_ = bucket.Delete(ctx, key)
		b.StartTimer()
	}
	claimstashOnce()
	cdkOnce()
	tCS, tCDK = 0, 0
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	// Pairs of runs in batches (a batch at least eight pairs, and at
	// most sixteen batches), for the median of the per-batch ratios.
	per := max(8, b.N/16)
	var ratios []float64
	var bCS, bCDK time.Duration
	for i := range b.N {
		cs0, cdk0 := tCS, tCDK
		if i%2 == 0 {
			claimstashOnce()
			cdkOnce()
		} else {
			cdkOnce()
			claimstashOnce()
		}
		bCS, bCDK = bCS+tCS-cs0, bCDK+tCDK-cdk0
		if (i+1)%per == 0 || i == b.N-1 {
			ratios = append(ratios, float64(bCDK)/float64(bCS))
			bCS, bCDK = 0, 0
		}
	}
	b.StopTimer()
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "ratio-median")
	n := float64(b.N)
	b.ReportMetric(float64(size)*n/tCS.Seconds()/1e6, "MB/s-claimstash")
	b.ReportMetric(float64(size)*n/tCDK.Seconds()/1e6, "MB/s-cdk")
	b.ReportMetric(float64(tCDK)/float64(tCS), "ratio")
	if stored > 0 {
		b.ReportMetric(float64(size)/float64(stored), "x-smaller")
	}
}

// pipe is one mempubsub topic with its subscription.
type pipe struct {
	ctx   context.Context
	topic *pubsub.Topic
	sub   *pubsub.Subscription
}

func newPipe(ctx context.Context) *pipe {
	t := mempubsub.NewTopic()
	s := mempubsub.NewSubscription(t, time.Minute)
	return &pipe{ctx: ctx, topic: t, sub: s}
}

func (p *pipe) roundTrip(b *testing.B, m *pubsub.Message) *pubsub.Message {
	if err := p.topic.Send(p.ctx, m); err != nil {
		b.Fatal(err)
	}
	got, err := p.sub.Receive(p.ctx)
	if err != nil {
		b.Fatal(err)
	}
	return got
}

func (p *pipe) close() {
	_ = p.sub.Shutdown(p.ctx)
	_ = p.topic.Shutdown(p.ctx)
}
