package s3stash_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// TestShareEndsWithStash: a presigned link to a stash that expires before
// the link would ends when the stash does. MinIO knows nothing of the
// stash's expiry (the object is still stored): only the link's own
// X-Amz-Date plus X-Amz-Expires stops a plain HTTP client, which is refused
// once the stash has expired.
func TestShareEndsWithStash(t *testing.T) {
	s, srv := newStore(t, s3stash.Config{})
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(s), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	p := payload(10<<10, 41)
	st, err := e.Create(ctx, "brief", p, stash.TTL(3*time.Second), stash.Compress(stash.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, st.Address.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	date, err := time.Parse("20060102T150405Z", u.Query().Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("link %s: X-Amz-Date: %v", link, err)
	}
	secs, err := strconv.Atoi(u.Query().Get("X-Amz-Expires"))
	if err != nil {
		t.Fatalf("link %s: X-Amz-Expires: %v", link, err)
	}
	end := st.Expiry()
	if linkEnd := date.Add(time.Duration(secs) * time.Second); linkEnd.After(end) || linkEnd.Before(end.Add(-2*time.Second)) {
		t.Fatalf("link ends at %s, want at the stash's expiry %s, not after", linkEnd, end.UTC())
	}
	fetch := func() int {
		t.Helper()
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := fetch(); code != http.StatusOK {
		t.Fatalf("GET of the live link: %d", code)
	}
	time.Sleep(time.Until(end) + 100*time.Millisecond)
	if code := fetch(); code != http.StatusForbidden {
		t.Errorf("GET of the link after its stash expired: %d, want 403 from the store", code)
	}
	// The object is still stored (unswept); the engine says expired.
	if _, err := s.Stat(ctx, st.Address.Namespace, st.Address.Key()); err != nil {
		t.Fatalf("Stat of the unswept object: %v", err)
	}
	f, err := links.NewFetcher(links.TrustOrigins(srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	if l, err := stash.ParseLink(link); err != nil || !errors.Is(f.Trusted(l), stash.ErrExpired) {
		t.Errorf("the fetcher does not read the link as expired: %v", err)
	}
	if _, err := e.Share(ctx, st.Address.String(), time.Hour); !errors.Is(err, stash.ErrExpired) {
		t.Errorf("Share of the expired stash: %v, want ErrExpired", err)
	}
}
