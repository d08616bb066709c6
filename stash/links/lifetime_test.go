package links_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/objectstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// trustedAt is what a fetcher whose clock reads at says of link: nil while
// the link's own expiry (its exp, or a presigned URL's timestamp plus
// duration) is ahead, ErrExpired after. It reads only the link, never the
// stash, as a plain client does.
func trustedAt(t *testing.T, link string, at time.Time, opts ...links.FetcherOption) error {
	t.Helper()
	l, err := stash.ParseLink(link)
	if err != nil {
		t.Fatalf("ParseLink(%s): %v", link, err)
	}
	return fetcher(t, stashtest.NewClock(at), nil, opts...).Trusted(l)
}

// TestShareEndsWithStash: a handler link never outlives its stash. Where
// the stash expires before the link would (by its TTL, or its idle
// deadline), the link's exp is the stash's expiry cut down to the second;
// otherwise the link gets its whole lifetime, rounded up as always.
func TestShareEndsWithStash(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 12, 1, 12, 0, 0, 300_000_000, time.UTC)
	sec := func(d time.Duration) time.Time { return start.Add(d).Truncate(time.Second) }
	for _, tc := range []struct {
		name string
		opts []stash.CreateOption
		ttl  time.Duration
		want time.Time // the link's expiry
	}{
		{"ttl sooner", []stash.CreateOption{stash.TTL(10 * time.Minute)}, time.Hour, sec(10 * time.Minute)},
		{"tti sooner", []stash.CreateOption{stash.TTI(5 * time.Minute)}, time.Hour, sec(5 * time.Minute)},
		{"tti sooner than ttl", []stash.CreateOption{stash.TTL(20 * time.Minute), stash.TTI(5 * time.Minute)}, time.Hour, sec(5 * time.Minute)},
		// The link would round up to 13:00:01, past the stash's 13:00:00.8.
		{"ttl within the rounding", []stash.CreateOption{stash.TTL(time.Hour + 500*time.Millisecond)}, time.Hour, sec(time.Hour)},
		{"ttl later", []stash.CreateOption{stash.TTL(2 * time.Hour)}, time.Hour, sec(time.Hour + time.Second)},
		{"default ttl", []stash.CreateOption{stash.TTL(2 * time.Hour)}, 0, sec(stash.DefaultShareTTL + time.Second)},
		{"no expiry", nil, time.Hour, sec(time.Hour + time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := stashtest.NewClock(start)
			e, signer := signingEngine(t, clk)
			st := create(t, e, "doc", payload(4<<10), tc.opts...)
			link, err := e.Share(ctx, st.String(), tc.ttl)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			exp, err := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
			if err != nil {
				t.Fatalf("link %s: exp: %v", link, err)
			}
			if got := time.Unix(exp, 0).UTC(); !got.Equal(tc.want) {
				t.Errorf("link expires at %s, want %s (stash expires at %v)", got.Format(time.RFC3339), tc.want.Format(time.RFC3339), st.Expiry())
			}
			if end := st.Expiry(); !end.IsZero() && time.Unix(exp, 0).After(end) {
				t.Errorf("link expires at %s, after its stash at %s", time.Unix(exp, 0).UTC(), end)
			}
			// The link alone says so, before and after, to whoever checks
			// it without asking the stash.
			trust := links.VerifyWith(signer)
			if err := trustedAt(t, link, tc.want.Add(-time.Second), trust); err != nil {
				t.Errorf("a second before it ends: %v", err)
			}
			if err := trustedAt(t, link, tc.want, trust); !errors.Is(err, stash.ErrExpired) {
				t.Errorf("when it ends: %v, want ErrExpired", err)
			}
		})
	}
}

// TestShareRefusesExpired: a stash whose expiry has passed, or that
// expires before the next whole second, is not shared: ErrExpired, the
// error Retrieve gives for it.
func TestShareRefusesExpired(t *testing.T) {
	ctx := context.Background()
	clk := stashtest.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 300_000_000, time.UTC))
	e, _ := signingEngine(t, clk)
	st := create(t, e, "soon", payload(4<<10), stash.TTL(10*time.Second))
	clk.Advance(9*time.Second + 500*time.Millisecond) // 12:00:09.8: until 12:00:10 is left
	if _, err := e.Share(ctx, st.String(), time.Hour); err != nil {
		t.Fatalf("Share with 0.5 s left, ending 12:00:10: %v", err)
	}
	clk.Advance(300 * time.Millisecond) // 12:00:10.1, the stash ends at 12:00:10.3
	if _, err := e.Retrieve(ctx, st.String()); err != nil {
		t.Fatalf("Retrieve of the live stash: %v", err)
	}
	link, err := e.Share(ctx, st.String(), time.Hour)
	var se *stash.Error
	if !errors.Is(err, stash.ErrExpired) || link != "" || !errors.As(err, &se) || se.Op != "share" {
		t.Errorf("Share with 0.2 s left: %q, %v; want ErrExpired", link, err)
	}
	clk.Advance(time.Second)
	_, rerr := e.Retrieve(ctx, st.String())
	link, err = e.Share(ctx, st.String(), time.Hour)
	if !errors.Is(err, stash.ErrExpired) || !errors.Is(rerr, stash.ErrExpired) || link != "" {
		t.Errorf("Share of an expired stash: %q, %v; want ErrExpired as Retrieve's %v", link, err, rerr)
	}
}

// osSigner is a memstash store that presigns as the objectstore backend
// does, with objectstash's own SignURL (which does no I/O).
type osSigner struct {
	*memstash.Store
	os *objectstash.Store
}

func (osSigner) Scheme() string { return objectstash.Scheme }

func (s osSigner) SignURL(ctx context.Context, r driver.LinkRequest) (string, error) {
	return s.os.SignURL(ctx, r)
}

// TestShareObjectstoreEndsWithStash: an objectstore presigned link, signed
// by objectstash itself by the system clock, ends when its stash does.
// Its server knows nothing of the stash's expiry: the link's own
// os_timestamp plus os_duration is all that stops a client.
func TestShareObjectstoreEndsWithStash(t *testing.T) {
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	const endpoint = "http://127.0.0.1:9"
	osStore, err := objectstash.New(endpoint, objectstash.WithSigner(&osauth.Signer{Kid: "relay", Key: priv}))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(osSigner{Store: memstash.New(), os: osStore}), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	trust := links.TrustOrigins(endpoint)
	for _, tc := range []struct {
		name string
		opts []stash.CreateOption
	}{
		{"ttl", []stash.CreateOption{stash.TTL(90 * time.Second)}},
		{"tti", []stash.CreateOption{stash.TTI(90 * time.Second)}},
	} {
		st := create(t, e, "doc-"+tc.name, payload(4<<10), tc.opts...)
		link, err := e.Share(ctx, st.String(), time.Hour)
		if err != nil {
			t.Fatalf("%s: Share: %v", tc.name, err)
		}
		end := st.Expiry()
		if err := trustedAt(t, link, end.Add(-2*time.Second), trust); err != nil {
			t.Errorf("%s: two seconds before the stash ends: %v", tc.name, err)
		}
		if err := trustedAt(t, link, end, trust); !errors.Is(err, stash.ErrExpired) {
			t.Errorf("%s: when the stash ends (%s): %v, want the link expired too (link %s)", tc.name, end.UTC(), err, link)
		}
	}
	// A stash without expiry: the link's whole hour.
	st := create(t, e, "forever", payload(4<<10))
	link, err := e.Share(ctx, st.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustedAt(t, link, time.Now().Add(59*time.Minute), trust); err != nil {
		t.Errorf("no expiry: 59 minutes on: %v", err)
	}
	if err := trustedAt(t, link, time.Now().Add(time.Hour+2*time.Second), trust); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("no expiry: past the hour: %v, want ErrExpired", err)
	}
}

// signingEngine is an engine over memory that signs share links with the
// HMAC key "k1", on clk, and its signer.
func signingEngine(t *testing.T, clk *stashtest.Clock) (*stash.Engine, *links.HMAC) {
	t.Helper()
	signer, err := links.NewHMAC("https://share.test/", key("k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1),
		stash.WithLinkSigner(signer), stash.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, signer
}
