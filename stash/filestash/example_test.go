package filestash_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/filestash"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "claimstash-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := filestash.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	eng, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	s, err := eng.Create(ctx, "greeting", []byte("hello, file backend"),
		stash.InScopes(stash.Scope{Key: "org", Value: "42"}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address)

	got, err := eng.Retrieve(ctx, s.Address.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got.Data)
	// Output:
	// file://default/org=42/greeting.5dd7941be1b55437beea3e975426d8baa22a585de3b6a876ac23681d55e08c6e
	// hello, file backend
}

// Opening the backend by URL, as a configuration file would.
func Example_openByURL() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "claimstash-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	eng, err := stash.New(stash.WithBackendURL(ctx, "file://"+dir+"/stashes?create_dir=true"))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	s, err := eng.Create(ctx, "report", make([]byte, 1000))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address.Scheme, s.Address.Namespace, s.Address.Name, s.Size)
	// Output: file default report 1000
}
