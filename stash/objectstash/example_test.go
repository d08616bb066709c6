package objectstash_test

import (
	"context"
	"fmt"

	"github.com/claimstash/claimstash/stash"
	_ "github.com/claimstash/claimstash/stash/objectstash" // registers objectstore://
)

// An engine whose stashes live in an objectstore service (claimstash serve,
// or Sentry's), signing a token per request with the key `claimstash keygen`
// wrote.
func Example() {
	ctx := context.Background()
	e, err := stash.New(stash.WithBackendURL(ctx,
		"objectstore://stash.internal:8888?kid=relay&key_file=/etc/claimstash/relay.key"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	s, err := e.Create(ctx, "report", []byte("…"), stash.InNamespace("attachments"),
		stash.InScopes(stash.Scope{Key: "org", Value: "42"}, stash.Scope{Key: "project", Value: "7"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s) // objectstore://attachments/org=42/project=7/report.<digest>
}
