package stash_test

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
	"github.com/claimstash/claimstash/stash/memstash"
)

func ExampleEngine_Share() {
	ctx := context.Background()
	// In production: 32 random bytes per key, from a secret store; list the
	// previous key after the new one while its links may still be in use.
	keys := []stash.LinkKey{{ID: "2025-06", Secret: bytes.Repeat([]byte("k"), 32)}}

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer srv.Close()

	eng, err := stash.New(stash.WithBackend(memstash.New()),
		stash.WithLinkKeys(keys...), stash.WithShareBaseURL(srv.URL+"/share/"))
	if err != nil {
		log.Fatal(err)
	}
	if handler, err = eng.ShareHandler(); err != nil {
		log.Fatal(err)
	}
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
	reader, err := stash.New(stash.WithLinkOrigins(srv.URL))
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
