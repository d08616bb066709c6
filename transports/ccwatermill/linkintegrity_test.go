package ccwatermill_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/transports/ccwatermill"
)

// A message whose share link names a stash that its server finds bad while
// it streams it (after its 200) is settled, once, by the consumer's
// checker: its failure handler gets a permanent stash.ErrIntegrity, the
// message is acknowledged and never redelivered, and the stream goes on.
// The link is served by the handler over a real loopback socket.
func TestCorruptStashBehindLinkIsNotRedelivered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The producer's side: a store, its share-link handler, a stash whose
	// stored bytes are then corrupted.
	store := memstash.New()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	signer, err := links.NewHMAC(srv.URL+"/share/", links.Key{ID: "k1", Secret: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	producer, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), stash.WithLinkSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	h = links.NewHandler(producer, signer, links.WithLogger(slog.New(slog.DiscardHandler)))
	payload := bytes.Repeat([]byte("a payload the consumer must never see "), 8<<10)
	st, err := producer.Create(ctx, "doc", payload)
	if err != nil {
		t.Fatal(err)
	}
	link, err := producer.Share(ctx, st.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !store.Corrupt(st.Namespace(), st.Address.Key(), int64(len(payload)/2)) {
		t.Fatal("Corrupt found nothing")
	}

	// The consumer's side: an engine that trusts the server, a checker
	// that routes permanent failures to a handler.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	f, err := links.NewFetcher(links.TrustOrigins(srv.URL), links.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := stash.New(stash.WithLinkFetcher(f))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var mu sync.Mutex
	var failures []error
	attempts := 0
	c, err := claimcheck.New(consumer,
		claimcheck.OnRehydrateFailure(func(_ context.Context, fl claimcheck.Failure) error {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, fl.Err)
			return nil
		}),
		claimcheck.WithObserver(claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) {
			if ev.Op == claimcheck.OpRehydrate && ev.Err != nil {
				mu.Lock()
				attempts++
				mu.Unlock()
			}
		})))
	if err != nil {
		t.Fatal(err)
	}

	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer gc.Close()
	sub := ccwatermill.NewSubscriber(gc, c)
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	ref := message.NewMessage(watermill.NewUUID(), []byte(link))
	ref.Metadata.Set(claimcheck.HeaderVersion, claimcheck.ContractVersion)
	ref.Metadata.Set(claimcheck.HeaderSize, strconv.Itoa(len(payload)))
	after := message.NewMessage(watermill.NewUUID(), []byte("after"))
	if err := gc.Publish("orders", ref, after); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		m.Ack()
		if string(m.Payload) != "after" {
			t.Fatalf("the consumer was handed a message of %d bytes", len(m.Payload))
		}
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the message after it never arrived: %d failed attempts, failure handler saw %v", attempts, failures)
	}
	time.Sleep(200 * time.Millisecond) // a redelivery would come back meanwhile
	mu.Lock()
	defer mu.Unlock()
	if attempts != 1 || len(failures) != 1 {
		t.Fatalf("%d attempts, %d failures handled; want one of each (the message would be redelivered for ever)", attempts, len(failures))
	}
	if !errors.Is(failures[0], stash.ErrIntegrity) || !claimcheck.IsPermanent(failures[0]) {
		t.Errorf("failure %v; want a permanent stash.ErrIntegrity", failures[0])
	}
}
