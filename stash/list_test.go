package stash_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

func TestList(t *testing.T) {
	ctx := context.Background()
	e, store := memEngine(t)
	a, err := e.Create(ctx, "a", []byte("first"), stash.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Create(ctx, "b", []byte("second"), stash.InNamespace("other"))
	if err != nil {
		t.Fatal(err)
	}
	// An object that is not a stash is skipped, not an error.
	if err := store.Put(ctx, "default", "not a key", strings.NewReader("x"), 1, &driver.Attributes{Size: 1, StoredSize: 1}); err != nil {
		t.Fatal(err)
	}
	list := func(ns string) []string {
		t.Helper()
		var got []string
		if err := e.List(ctx, ns, func(s *stash.Stash) error {
			if s.Size == 0 || s.Created.IsZero() {
				t.Errorf("List gave %s without attributes: %+v", s, s)
			}
			got = append(got, s.String())
			return nil
		}); err != nil {
			t.Fatalf("List(%q): %v", ns, err)
		}
		sort.Strings(got)
		return got
	}
	if got := list("default"); len(got) != 1 || got[0] != a.String() {
		t.Errorf("List(default) = %v, want [%s]", got, a)
	}
	if got := list(""); len(got) != 2 || got[0] != a.String() || got[1] != b.String() {
		t.Errorf("List(\"\") = %v, want [%s %s]", got, a, b)
	}
	stop := errors.New("stop")
	if err := e.List(ctx, "", func(*stash.Stash) error { return stop }); err != stop {
		t.Errorf("List stopped by fn: %v, want fn's error as it is", err)
	}
	inlineOnly, err := stash.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := inlineOnly.List(ctx, "", func(*stash.Stash) error { return nil }); !errors.Is(err, stash.ErrUnsupported) {
		t.Errorf("List without a listing backend: %v, want ErrUnsupported", err)
	}
}
