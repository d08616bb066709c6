package osauth_test

import (
	"fmt"
	"os"
	"time"

	"github.com/claimstash/claimstash/osauth"
)

func ExampleCanonicalForm() {
	fmt.Printf("%q\n", osauth.CanonicalForm("HEAD", "/v1/objects/testing/org=17;project=42/foo/bar",
		"os_timestamp=1985-04-12T23:20:50.52Z&os_kid=relay&os_duration=3600"))
	// Output: "GET\n/v1/objects/testing/org=17;project=42/foo/bar\nos_duration=3600&os_kid=relay&os_timestamp=1985-04-12T23:20:50.52Z"
}

func ExampleSigner_Token() {
	dir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(dir)
	files, err := osauth.GenerateKey(dir, "relay") // relay.key, relay.pub
	if err != nil {
		panic(err)
	}
	tok, err := osauth.Mint("relay", files.Private, "attachments",
		[]osauth.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: osauth.Wildcard}},
		[]osauth.Permission{osauth.Read}, time.Minute)
	if err != nil {
		panic(err)
	}
	keys, _ := osauth.OpenKeyDir(dir, 0)
	v := osauth.NewVerifier(keys)
	fmt.Println(v.VerifyToken(tok, osauth.Request{Usecase: "attachments", Scopes: []osauth.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "7"}}, Permission: osauth.Read}))
	fmt.Println(v.VerifyToken(tok, osauth.Request{Usecase: "attachments", Scopes: []osauth.Scope{{Key: "org", Value: "43"}}, Permission: osauth.Read}))
	// Output:
	// <nil>
	// osauth: not permitted: token does not cover scope org=43
}
