package ccsqs_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/goleak"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/mototest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the SDK's HTTP clients.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const bucket = "claimstash-sqs"

// quiet is a logger for tests that provoke failures on purpose.
var quiet = slog.New(slog.DiscardHandler)

// logs is a logger that keeps what it is given.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.Write(p) }

func (l *logs) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

func (l *logs) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// failures is a checker observer that sends rehydrate failures to ch.
func failures(ch chan<- error) claimcheck.Option {
	return claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
		if ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
			ch <- ev.Err
		}
	}))
}

// rig is one moto server (SQS, SNS) and one MinIO server (the stashes).
type rig struct {
	moto  *mototest.Server
	minio *miniotest.Server
	sqs   *sqs.Client // raw: what a client without claimstash sees
	s3    *s3.Client
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{moto: mototest.Start(t), minio: miniotest.Start(t, bucket)}
	r.sqs = sqs.NewFromConfig(r.moto.Config())
	r.s3 = r.minio.Client()
	return r
}

// engine is an engine whose stashes are objects of bucket on MinIO, one
// namespace per bucket (s3stash's default layout).
func (r *rig) engine(t *testing.T) *stash.Engine {
	t.Helper()
	st, err := s3stash.New(r.s3)
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace(bucket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func (r *rig) checker(t *testing.T, opts ...claimcheck.Option) *claimcheck.Checker {
	t.Helper()
	c, err := claimcheck.New(r.engine(t), append([]claimcheck.Option{claimcheck.WithContract(claimcheck.ContractAWSPointer)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var queueSeq atomic.Int64

// queue creates a queue and returns its URL.
func (r *rig) queue(t testing.TB, attrs map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("q-%d-%d", time.Now().UnixNano()%1e9, queueSeq.Add(1))
	out, err := r.sqs.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// text returns n printable bytes from seed.
func text(n int, seed uint64) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}
