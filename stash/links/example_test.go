package links_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

// An HMAC signer makes the share links of a backend that cannot presign;
// NewHandler serves them; a Fetcher that trusts their origin lets another
// engine retrieve them, verified against the digest the link names.
func ExampleNewHMAC() {
	ctx := context.Background()
	// In production: 32 random bytes per key, from a secret store; list the
	// previous key after the new one while its links may still be in use.
	keys := []links.Key{{ID: "2025-06", Secret: bytes.Repeat([]byte("k"), 32)}}

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer srv.Close()

	signer, err := links.NewHMAC(srv.URL+"/share/", keys...)
	if err != nil {
		log.Fatal(err)
	}
	eng, err := stash.New(stash.WithBackend(memstash.New()), stash.WithLinkSigner(signer))
	if err != nil {
		log.Fatal(err)
	}
	handler = links.NewHandler(eng, signer)
	s, err := eng.Create(ctx, "report", []byte(strings.Repeat("row\n", 100)))
	if err != nil {
		log.Fatal(err)
	}
	link, err := eng.Share(ctx, s.String(), 10*time.Minute)
	if err != nil {
		log.Fatal(err)
	}

	// Anyone holding the link can GET the payload, without credentials...
	resp, err := http.Get(link)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, len(body))

	// ...and an engine that trusts the link's origin retrieves it like any
	// address, verified against the digest the link names.
	fetcher, err := links.NewFetcher(links.TrustOrigins(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	reader, err := stash.New(stash.WithLinkFetcher(fetcher))
	if err != nil {
		log.Fatal(err)
	}
	got, err := reader.Retrieve(ctx, link)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Name(), got.Size, got.String() == s.String())
	// Output:
	// 200 OK 400
	// report 400 true
}
