package service_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// TestObjectstashShareScoped shares scoped stashes on the objectstore backend
// as objectstore presigned URLs, against this server over a loopback socket:
// a plain HTTP GET reads the stored bytes, an engine reads and verifies the
// link, and a tampered or expired link yields nothing.
func TestObjectstashShareScoped(t *testing.T) {
	ctx := context.Background()
	h := &objectHarness{tb: t}
	d, err := h.MakeDriver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fetcher, err := links.NewFetcher(links.TrustOrigins(h.ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	scopes := []stash.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "7"}}
	e, err := stash.New(stash.WithBackend(d), stash.WithInlineMax(-1), stash.WithNamespace("attachments"),
		stash.WithScopes(scopes...), stash.WithLinkFetcher(fetcher))
	if err != nil {
		t.Fatal(err)
	}
	payload := stashtest.RandomPayload(100<<10, 12)
	plain, err := e.Create(ctx, "report", payload, stash.Compress(stash.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, plain.String(), time.Minute)
	if err != nil {
		t.Fatalf("Share of a scoped stash: %v", err)
	}
	if !strings.HasPrefix(link, h.ts.URL+"/v1/objects/attachments/org=42;project=7/report.") || !strings.Contains(link, "os_sig=") {
		t.Fatalf("Share = %q, want an objectstore presigned URL with the scopes in the path", link)
	}

	// A raw client: the fragment is never sent; the stored bytes come back.
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != string(payload) {
		t.Fatalf("plain GET of the link: %s, %d bytes (want %d)", resp.Status, len(body), len(payload))
	}

	// The engine fetches it, verifying the digest.
	got, err := e.Retrieve(ctx, link)
	if err != nil || string(got.Data) != string(payload) {
		t.Fatalf("Retrieve of the link: %v", err)
	}
	// A compressed stash too: a raw client gets the zstd bytes, labelled,
	// and the engine the payload.
	text := []byte(strings.Repeat("claim check ", 20000))
	zs, err := e.Create(ctx, "notes", text)
	if err != nil {
		t.Fatal(err)
	}
	zlink, err := e.Share(ctx, zs.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err = http.Get(zlink); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "zstd" || len(body) >= len(text) {
		t.Fatalf("plain GET of a compressed stash's link: %s, %q, %d bytes", resp.Status, resp.Header.Get("Content-Encoding"), len(body))
	}
	if got, err := e.Retrieve(ctx, zlink); err != nil || string(got.Data) != string(text) {
		t.Fatalf("Retrieve of a compressed stash's link: %v", err)
	}

	// A tampered signature: the server refuses it, and so the engine.
	u, _ := url.Parse(link)
	q := u.Query()
	sig := []byte(q.Get("os_sig"))
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	q.Set("os_sig", string(sig))
	u.RawQuery = q.Encode()
	tampered := u.String()
	if resp, err = http.Get(tampered); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain GET of a tampered link: %s, want 401", resp.Status)
	}
	if got, err := e.Retrieve(ctx, tampered); !errors.Is(err, stash.ErrForbidden) || got != nil {
		t.Fatalf("Retrieve of a tampered link: %v, want ErrForbidden", err)
	}
	// A link whose path names another stash does not verify either.
	other := strings.Replace(link, "org=42;project=7", "org=42;project=8", 1)
	if _, err := e.Retrieve(ctx, other); !errors.Is(err, stash.ErrForbidden) {
		t.Fatalf("Retrieve of a link moved to another scope: %v, want ErrForbidden", err)
	}

	// An expired link: the same GET presigned two hours ago for a minute.
	old := *h.signer
	old.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	bare := *u
	bare.RawQuery, bare.Fragment = "", ""
	expired, err := old.Presign(http.MethodGet, bare.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired += "#" + u.Fragment
	if resp, err = http.Get(expired); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("plain GET of an expired link: %s, want 401", resp.Status)
	}
	// The fetcher sees the expiry in the link itself, before any request.
	if got, err := e.Retrieve(ctx, expired); !errors.Is(err, stash.ErrExpired) || got != nil {
		t.Fatalf("Retrieve of an expired link: %v, want ErrExpired", err)
	}
	// A fetcher whose clock lags lets it through; the server refuses it.
	lagging, err := links.NewFetcher(links.TrustOrigins(h.ts.URL), links.WithClock(old.Now))
	if err != nil {
		t.Fatal(err)
	}
	le, err := stash.New(stash.WithBackend(d), stash.WithLinkFetcher(lagging))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := le.Retrieve(ctx, expired); !errors.Is(err, stash.ErrForbidden) || got != nil {
		t.Fatalf("Retrieve of an expired link past the fetcher: %v, want ErrForbidden", err)
	}
}
