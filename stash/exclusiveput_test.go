package stash_test

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// exclusiveStore is memstash (whose Put answers ErrExists for a key that
// holds an object) as a driver.ExclusivePutter for payloads up to max
// bytes, counting the engine's Stats and Puts.
type exclusiveStore struct {
	*memstash.Store
	max         int64
	stats, puts atomic.Int64
}

func (d *exclusiveStore) ExclusivePut(size int64) bool { return size <= d.max }

func (d *exclusiveStore) Stat(ctx context.Context, ns, key string) (*driver.Attributes, error) {
	d.stats.Add(1)
	return d.Store.Stat(ctx, ns, key)
}

func (d *exclusiveStore) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	d.puts.Add(1)
	return d.Store.Put(ctx, ns, key, r, size, a)
}

// TestExclusivePutSkipsTheLook: on a driver whose Put is its own existence
// check, Create writes new content without a Stat first, and content
// stored already (by another engine) is still found after the refused Put,
// its expiry extended, an expired leftover written afresh and a stored
// object that does not match its address replaced. Content the engine
// itself stored lately, and payloads the driver does not put exclusively,
// are looked up first, as on any driver, and not sent again.
func TestExclusivePutSkipsTheLook(t *testing.T) {
	ctx := context.Background()
	clock := stashtest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	d := &exclusiveStore{Store: memstash.New(), max: 1 << 10}
	e, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1), stash.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	counts := func() (stats, puts int64) { return d.stats.Swap(0), d.puts.Swap(0) }
	expect := func(what string, wantStats, wantPuts int64) {
		t.Helper()
		if stats, puts := counts(); stats != wantStats || puts != wantPuts {
			t.Fatalf("%s: %d Stats and %d Puts, want %d and %d", what, stats, puts, wantStats, wantPuts)
		}
	}
	payload := stashtest.RandomPayload(1<<10, 1)

	first, err := e.Create(ctx, "a", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expect("Create of new content", 0, 1)

	clock.Advance(time.Minute)
	other, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1), stash.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	again, err := other.Create(ctx, "a", payload, stash.TTL(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expect("Create of content another engine stored", 1, 1)
	if again.String() != first.String() {
		t.Fatalf("second Create: %s, want %s", again, first)
	}
	got, err := e.Stat(ctx, first.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(2 * time.Hour); !got.ExpiresAt.Equal(want) {
		t.Fatalf("after a second Create with a longer TTL: expires at %v, want %v", got.ExpiresAt, want)
	}
	counts()

	// A shorter TTL never shortens the stash's life. The engine stored
	// this content lately: it looks first and sends nothing.
	if _, err := e.Create(ctx, "a", payload, stash.TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	expect("Create of content this engine stored", 1, 0)
	if got2, err := e.Stat(ctx, first.String()); err != nil || !got2.ExpiresAt.Equal(got.ExpiresAt) {
		t.Fatalf("after a Create with a shorter TTL: %v (%v), want it to expire at %v still", got2, err, got.ExpiresAt)
	}
	counts()

	// Expired and not yet swept: written afresh.
	clock.Advance(3 * time.Hour)
	fresh, err := e.Create(ctx, "a", payload, stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !fresh.Created.Equal(clock.Now()) {
		t.Fatalf("Create over an expired leftover: created %v, want %v (written afresh)", fresh.Created, clock.Now())
	}
	if r, err := e.Retrieve(ctx, fresh.String()); err != nil || !bytes.Equal(r.Data, payload) {
		t.Fatalf("Retrieve after a Create over an expired leftover: %v", err)
	}
	counts()

	// Under the key, an object that is not the content it names (a torn
	// write): replaced, not reported as written.
	tornPayload := stashtest.RandomPayload(100, 2)
	torn := putRaw(t, d.Store, "torn", tornPayload, tornPayload[:50], driver.EncodingIdentity, int64(len(tornPayload)))
	counts()
	s, err := e.Create(ctx, "torn", tornPayload)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != torn {
		t.Fatalf("Create: %s, want %s", s, torn)
	}
	if r, err := e.Retrieve(ctx, torn); err != nil || !bytes.Equal(r.Data, tornPayload) {
		t.Fatalf("Retrieve after a Create over a torn object: %v", err)
	}
	counts()

	// Over the driver's bound: looked up first, and a stored payload is
	// not put at all.
	big := stashtest.RandomPayload(4<<10, 3)
	if _, err := e.Create(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	expect("Create of new content over the bound", 1, 1)
	if _, err := e.Create(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	expect("Create of stored content over the bound", 1, 0)
}
