package ccnats

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
)

// TestHeaderIsCaseSensitive: names are exact, but for a contract header's
// canonical name (Claimstash-Version), which a hop that canonicalised the
// names (nats.go before v1.19, an HTTP bridge) leaves: such a reference is
// still read as one, never handed on as a plain message whose body is an
// address. Other casings are other names.
func TestHeaderIsCaseSensitive(t *testing.T) {
	h := Header(nats.Header{})
	h.Set(claimcheck.HeaderVersion, "1")
	if _, ok := h["claimstash-version"]; !ok {
		t.Fatalf("Set did not use the exact lowercase name: %v", h)
	}
	if _, ok := h.Get("Claimstash-Version"); ok {
		t.Fatal("Get matched a differently-cased name")
	}
	h2 := Header(nats.Header{"Claimstash-Version": {"1"}, "Claimstash-Size": {"5"}, "X": {"y"}})
	if !claimcheck.IsClaimChecked(h2) {
		t.Fatal("a canonicalised contract header did not mark the message claim-checked")
	}
	if v, ok := h2.Get(claimcheck.HeaderSize); !ok || v != "5" {
		t.Fatalf("canonical size header: %q, %v", v, ok)
	}
	h2.Del(claimcheck.HeaderVersion)
	h2.Del(claimcheck.HeaderSize)
	if len(h2) != 1 {
		t.Fatalf("Del left the canonical names: %v", h2)
	}
	for _, other := range []string{"CLAIMSTASH-VERSION", "ClaimStash-Version", "claimstash-Version"} {
		if claimcheck.IsClaimChecked(Header(nats.Header{other: {"1"}})) {
			t.Errorf("%s marked the message claim-checked", other)
		}
	}
	both := Header(nats.Header{claimcheck.HeaderVersion: {"1"}, "Claimstash-Version": {"2"}})
	if v, _ := both.Get(claimcheck.HeaderVersion); v != "1" {
		t.Errorf("the exact name lost to the canonical one: %q", v)
	}
	h.Del("CLAIMSTASH-VERSION")
	if _, ok := h.Get(claimcheck.HeaderVersion); !ok {
		t.Fatal("Del removed a differently-cased name")
	}
}

func TestHeaderGetAndWireSize(t *testing.T) {
	tests := []struct {
		name   string
		h      nats.Header
		key    string
		want   string
		wantOK bool
		size   int
	}{
		{"nil", nil, "k", "", false, 0},
		{"one", nats.Header{"k": {"v"}}, "k", "v", true, 12 + 2 + 4},
		{"several values", nats.Header{"key": {"a", "bc"}}, "key", "a", true, 12 + 3 + 1 + 4 + 3 + 2 + 4},
		{"empty slice is unset", nats.Header{"k": {}}, "k", "", false, 12},
		{"empty value is set", nats.Header{"k": {""}}, "k", "", true, 12 + 1 + 4},
		{"value sent trimmed", nats.Header{"k": {"  v \t"}}, "k", "  v \t", true, 12 + 2 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := Header(tt.h).Get(tt.key)
			if v != tt.want || ok != tt.wantOK {
				t.Errorf("Get = %q, %v; want %q, %v", v, ok, tt.want, tt.wantOK)
			}
			if n := Header(tt.h).WireSize(); n != tt.size {
				t.Errorf("WireSize = %d, want %d", n, tt.size)
			}
		})
	}
}

func TestCowHeaderLeavesSourceAlone(t *testing.T) {
	src := nats.Header{"a": {"1"}, claimcheck.HeaderOffload: {"always"}}
	c := &cowHeader{src: src}
	if v, _ := c.Get("a"); v != "1" || c.copied {
		t.Fatalf("read copied or failed: %q %v", v, c.copied)
	}
	c.Del("missing")
	if c.copied {
		t.Fatal("deleting a missing key copied the header")
	}
	c.Del(claimcheck.HeaderOffload)
	c.Set(claimcheck.HeaderVersion, "1")
	if len(src) != 2 || src.Get(claimcheck.HeaderOffload) != "always" || src.Get(claimcheck.HeaderVersion) != "" {
		t.Fatalf("source changed: %v", src)
	}
	if _, ok := c.Get(claimcheck.HeaderOffload); ok {
		t.Fatal("copy still has the deleted key")
	}
	if v, _ := c.Get(claimcheck.HeaderVersion); v != "1" {
		t.Fatal("copy lacks the set key")
	}
	c.dst["a"][0] = "changed"
	if src["a"][0] != "1" {
		t.Fatal("copy shares value slices with the source")
	}
}
