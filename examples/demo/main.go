// Command demo is claimstash's main job on the embedded default: a Watermill
// router over a Go channel, with the file backend in a temporary directory.
// It publishes a mix of small and multi-MiB messages through the claim-check
// publisher decorator, checks every byte in the handler, prints what crossed
// the "broker" against the payload it carried, and shows a tampered stash
// refused. It exits non-zero if anything is wrong.
//
//	make demo   # or: go run ./examples/demo
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

const topic = "orders"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo: FAILED:", err)
		os.Exit(1)
	}
}

// wire counts what crosses the broker: it sits between the claim-check
// decorator and the Go channel.
type wire struct {
	message.Publisher
	messages, bytes atomic.Int64
	mu              sync.Mutex
	largest         int
	last            *message.Message // the last claim-checked message sent
}

func (w *wire) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		n := len(m.Payload)
		for k, v := range m.Metadata {
			n += len(k) + len(v)
		}
		w.messages.Add(1)
		w.bytes.Add(int64(n))
		w.mu.Lock()
		w.largest = max(w.largest, n)
		if claimcheck.IsClaimChecked(claimcheck.MapHeaders(m.Metadata)) {
			w.last = m.Copy()
		}
		w.mu.Unlock()
	}
	return w.Publisher.Publish(topic, msgs...)
}

func run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "claimstash-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	store, err := filestash.New(dir)
	if err != nil {
		return err
	}
	exp, inst, err := telemetry()
	if err != nil {
		return err
	}
	defer exp.Shutdown(context.Background())
	engine, err := stash.New(stash.WithBackend(store), stash.WithDefaultTTL(time.Hour), inst.EngineOption())
	if err != nil {
		return err
	}
	defer engine.Close()

	var counters claimcheck.Counters
	var refusedMu sync.Mutex
	var refused []error
	checker, err := claimcheck.New(engine,
		claimcheck.WithObserver(claimcheck.Observers(&counters, inst)),
		// A message that cannot be rehydrated is set aside here (a real
		// service would publish it to a poison topic) and acknowledged;
		// without this option it would be nacked and redelivered.
		claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
			refusedMu.Lock()
			defer refusedMu.Unlock()
			refused = append(refused, f.Err)
			return nil
		}),
	)
	if err != nil {
		return err
	}

	broker := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer broker.Close()
	w := &wire{Publisher: broker}
	publisher := ccwatermill.NewPublisher(w, checker)

	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	router.AddMiddleware(ccwatermill.Middleware(checker)) // in the handler: no extra hand-off per message

	// The mix: mostly small, some around the 256 KiB threshold, a few
	// multi-MiB ones that no 1 MiB broker would take.
	sizes := []int{0, 120, 2 << 10, 40 << 10, 200 << 10, 255 << 10, 300 << 10, 1 << 20, 3 << 20, 8 << 20, 5<<20 + 17}
	for i := range 20 {
		sizes = append(sizes, 64+i*97)
	}
	var (
		handled, badBytes atomic.Int64
		payloadBytes      int64
		allDone           = make(chan struct{})
		doneOnce          sync.Once
		handlerErrs       = make(chan error, len(sizes))
	)
	router.AddConsumerHandler("verify", topic, broker, func(msg *message.Message) error {
		sum := sha256.Sum256(msg.Payload)
		if hex.EncodeToString(sum[:]) != msg.Metadata.Get("sha256") || strconv.Itoa(len(msg.Payload)) != msg.Metadata.Get("len") {
			badBytes.Add(1)
			handlerErrs <- fmt.Errorf("message %s: %d bytes do not match what was sent", msg.UUID, len(msg.Payload))
		}
		if claimcheck.IsClaimChecked(claimcheck.MapHeaders(msg.Metadata)) {
			handlerErrs <- fmt.Errorf("message %s: reached the handler still claim-checked", msg.UUID)
		}
		if handled.Add(1) == int64(len(sizes)) {
			doneOnce.Do(func() { close(allDone) })
		}
		return nil
	})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(runCtx) }()
	select {
	case <-router.Running():
	case <-ctx.Done():
		return ctx.Err()
	}

	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		sum := sha256.Sum256(p)
		m := message.NewMessageWithContext(ctx, watermill.NewUUID(), p)
		m.Metadata.Set("sha256", hex.EncodeToString(sum[:]))
		m.Metadata.Set("len", strconv.Itoa(n))
		m.Metadata.Set("seq", strconv.Itoa(i))
		payloadBytes += int64(n)
		if err := publisher.Publish(topic, m); err != nil {
			return fmt.Errorf("publish %d (%d bytes): %w", i, n, err)
		}
	}
	select {
	case <-allDone:
	case <-ctx.Done():
		return fmt.Errorf("handled %d of %d messages: %w", handled.Load(), len(sizes), ctx.Err())
	}
	elapsed := time.Since(start)

	s := counters.Snapshot()
	fmt.Fprintf(out, "claimstash demo: Watermill router over a Go channel, file backend in %s\n", dir)
	fmt.Fprintf(out, "  messages          %d published, %d handled, every byte checked\n", len(sizes), handled.Load())
	fmt.Fprintf(out, "  claim-checked     %d (over the %d KiB threshold), %d passed through untouched\n", s.Offloaded, claimcheck.DefaultThreshold>>10, int64(len(sizes))-s.Offloaded)
	fmt.Fprintf(out, "  payload           %s\n", mib(payloadBytes))
	w.mu.Lock()
	largest := w.largest
	w.mu.Unlock()
	fmt.Fprintf(out, "  crossed broker    %s in %d messages, the largest %s (the largest payload: %s)\n", mib(w.bytes.Load()), w.messages.Load(), mib(int64(largest)), mib(int64(slices.Max(sizes))))
	fmt.Fprintf(out, "  stored            %s in %s\n", mib(s.StoredBytes), elapsed.Round(time.Millisecond))

	// Tampering: flip a byte of a stash on disk and replay its message.
	w.mu.Lock()
	replay := w.last
	w.mu.Unlock()
	if replay == nil {
		return errors.New("no claim-checked message went out")
	}
	addr, err := stash.ParseAddress(string(replay.Payload))
	if err != nil {
		return err
	}
	data := filepath.Join(dir, addr.Namespace, filepath.FromSlash(addr.Key()), "data")
	if err := flipByte(data); err != nil {
		return fmt.Errorf("tampering with %s: %w", data, err)
	}
	before := handled.Load()
	if err := broker.Publish(topic, replay); err != nil {
		return err
	}
	deadline := time.After(5 * time.Second)
	for {
		refusedMu.Lock()
		n := len(refused)
		refusedMu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-deadline:
			return errors.New("a tampered stash was not refused")
		case <-time.After(5 * time.Millisecond):
		}
	}
	refusedMu.Lock()
	tamperErr := refused[0]
	refusedMu.Unlock()
	fmt.Fprintf(out, "  tampered stash    refused, handler not called: %v\n", tamperErr)

	stop()
	if err := <-routerDone; err != nil {
		return err
	}
	counts, err := printMetrics(out, exp)
	if err != nil {
		return err
	}
	close(handlerErrs)
	var errs []error
	if counts["offloaded"] != "6" || counts["passed"] != strconv.Itoa(len(sizes)-6) {
		errs = append(errs, fmt.Errorf("metrics count %s offloaded and %s passed through, want 6 and %d", counts["offloaded"], counts["passed"], len(sizes)-6))
	}
	for err := range handlerErrs {
		errs = append(errs, err)
	}
	switch {
	case !errors.Is(tamperErr, stash.ErrIntegrity):
		errs = append(errs, fmt.Errorf("tampered stash refused with %v, want an integrity error", tamperErr))
	case handled.Load() != before:
		errs = append(errs, errors.New("the tampered message reached the handler"))
	case s.Offloaded != 6 || s.Rehydrated != 6:
		errs = append(errs, fmt.Errorf("claim-checked %d, rehydrated %d; want 6 and 6", s.Offloaded, s.Rehydrated))
	case w.bytes.Load() >= payloadBytes/10:
		errs = append(errs, fmt.Errorf("%d bytes crossed the broker for %d of payload", w.bytes.Load(), payloadBytes))
	case largest > claimcheck.DefaultThreshold:
		errs = append(errs, fmt.Errorf("a %d-byte message crossed the broker, over the threshold", largest))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(out, "OK")
	return nil
}

func flipByte(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 1000); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, 1000)
	return err
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
