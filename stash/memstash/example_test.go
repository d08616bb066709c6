package memstash_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// An engine over memory, as tests and single-process pipelines use it: the
// address is the same one any backend gives the same bytes, and a deleted
// stash is gone.
func Example() {
	ctx := context.Background()
	eng, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	s, err := eng.Create(ctx, "greeting", []byte("hello, memory"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address)

	got, err := eng.Retrieve(ctx, s.Address.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got.Data)

	if err := eng.Delete(ctx, s.Address.String()); err != nil {
		log.Fatal(err)
	}
	_, err = eng.Retrieve(ctx, s.Address.String())
	fmt.Println(errors.Is(err, stash.ErrNotFound))
	// Output:
	// mem://default/greeting.052ab0d451dd78856346d6e55a88b20e192ddd7d23e7004cc5ec546429903bd5
	// hello, memory
	// true
}
