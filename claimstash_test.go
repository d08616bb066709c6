package claimstash_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/claimstash/claimstash"
	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
)

func TestOpenEnv(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{
		claimstash.EnvBackend:   " file://" + dir + ", mem:// ",
		claimstash.EnvNamespace: "orders",
		claimstash.EnvMaxSize:   "1000000",
	}
	cc, err := claimstash.OpenEnv(ctx, claimstash.WithGetenv(func(k string) string { return env[k] }),
		claimstash.WithCheckerOptions(claimcheck.WithMode(claimcheck.Always)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Engine().Close()
	if got := strings.Join(cc.Engine().Schemes(), ","); got != "file,mem" {
		t.Errorf("schemes %s, want file,mem", got)
	}
	h := claimcheck.MapHeaders{}
	body, addr, err := cc.Offload(ctx, "orders", []byte("a payload"), h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "file://orders/orders.") {
		t.Errorf("address %s: want the file backend and the environment's namespace", addr)
	}
	out, _, err := cc.Rehydrate(ctx, "orders", body, h)
	if err != nil || string(out) != "a payload" {
		t.Fatalf("Rehydrate = %q, %v", out, err)
	}
	if _, err := cc.Engine().Create(ctx, "big", make([]byte, 1000001)); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("a payload over %s: %v, want ErrTooLarge", claimstash.EnvMaxSize, err)
	}
}

func TestOpenEnvRefuses(t *testing.T) {
	ctx := context.Background()
	for name, env := range map[string]map[string]string{
		"no backend":      {},
		"unknown scheme":  {claimstash.EnvBackend: "ftp://x"},
		"bad max size":    {claimstash.EnvBackend: "mem://", claimstash.EnvMaxSize: "-1"},
		"bad link keys":   {claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: "k:c2hvcnQ"},
		"bad share URL":   {claimstash.EnvBackend: "mem://", claimstash.EnvShareURL: "ftp://x/"},
		"bad namespace":   {claimstash.EnvBackend: "mem://", claimstash.EnvNamespace: "Not Valid"},
		"bad trust entry": {claimstash.EnvBackend: "mem://", claimstash.EnvTrustedOrigins: "https://h/path"},
	} {
		if cc, err := claimstash.OpenEnv(ctx, claimstash.WithGetenv(func(k string) string { return env[k] })); err == nil {
			cc.Engine().Close()
			t.Errorf("%s: OpenEnv succeeded", name)
		}
	}
	if _, err := claimstash.Open(ctx, ""); err == nil {
		t.Error("Open with no URL succeeded")
	}
}

// Open builds the engine and the checker from a backend URL; the standard
// backends need no import.
func ExampleOpen() {
	ctx := context.Background()
	cc, err := claimstash.Open(ctx, "mem://", claimstash.WithCheckerOptions(claimcheck.WithThreshold(16)))
	if err != nil {
		panic(err)
	}
	defer cc.Engine().Close()

	h := claimcheck.MapHeaders{}
	body, addr, err := cc.Offload(ctx, "orders", []byte("a payload over sixteen bytes"), h)
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(addr, "mem://default/orders."), h[claimcheck.HeaderSize])
	out, _, err := cc.Rehydrate(ctx, "orders", body, h)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output:
	// true 28
	// a payload over sixteen bytes
}
