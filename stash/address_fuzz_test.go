package stash_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash"
)

// FuzzParseAddress: ParseAddress never panics, rejects only with
// ErrInvalidAddress, and what it accepts round-trips through String and
// names nothing outside a store.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"mem://default/orders." + d64,
		"file://ns/org=42/project=1337/orders." + d64,
		"s3://bucket/legacy." + d32,
		"nats://store/a.b.c." + d64,
		"inline://default/hi?data=aGVsbG8%3D",
		"inline://default/hi?data=aGVsbG8=",
		"inline://default/e?data=",
		"mem://default/../etc/passwd." + d64,
		"mem:///abs." + d64,
		"mem://default/a%2Fb." + d64,
		"mem://default/a\x00b." + d64,
		"mem://Default/x." + d64,
		"mem://default/x." + strings.ToUpper(d64),
		"mem://default/x." + d64 + "?q=1",
		"inline://default/x?data=%zz",
		"inline://default/x?data=a&data=b",
		"://",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := stash.ParseAddress(s)
		if err != nil {
			if !errors.Is(err, stash.ErrInvalidAddress) {
				t.Fatalf("ParseAddress(%q): error %v does not match ErrInvalidAddress", s, err)
			}
			return
		}
		out := a.String()
		b, err := stash.ParseAddress(out)
		if err != nil {
			t.Fatalf("ParseAddress(%q) accepted, but its String %q does not parse: %v", s, out, err)
		}
		if b.String() != out || b.Scheme != a.Scheme || b.Namespace != a.Namespace || b.Name != a.Name ||
			b.Digest != a.Digest || !slices.Equal(a.Scopes, b.Scopes) || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("round trip of %q: %+v then %+v", s, a, b)
		}
		if !a.IsInline() && out != s {
			t.Fatalf("String of non-inline %q is %q: want it unchanged", s, out)
		}
		key := a.Key()
		for _, seg := range strings.Split(a.Namespace+"/"+key, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\x00\\%") {
				t.Fatalf("accepted %q, whose path has segment %q", s, seg)
			}
		}
		if !a.IsInline() && a.DigestAlgorithm() == "" {
			t.Fatalf("accepted %q without a digest", s)
		}
	})
}

// FuzzInline: any payload that fits inline round-trips through the address
// and through an engine with no backend at all.
func FuzzInline(f *testing.F) {
	for _, p := range [][]byte{nil, {}, []byte("hello"), {0, 0xff, '+', '/', '='}, bytes.Repeat([]byte{0xfb}, 300)} {
		f.Add(p, "name")
	}
	f.Add([]byte("x"), "../etc")
	f.Add([]byte("x"), "a/b")
	e, err := stash.New(stash.WithInlineMax(16 << 10))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if len(data) > 4<<10 || len(name) > 2*stash.MaxNameLength {
			return // large inputs find nothing new and make minimizing slow
		}
		s, err := e.Create(ctx, name, data)
		if stash.ValidateName(name) != nil {
			if !errors.Is(err, stash.ErrInvalidAddress) {
				t.Fatalf("Create with bad name %q: %v, want ErrInvalidAddress", name, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Create(%q, %d bytes): %v", name, len(data), err)
		}
		if !s.Address.IsInline() {
			t.Fatalf("Create of %d bytes gave %s, want inline", len(data), s)
		}
		addr := s.String()
		a, err := stash.ParseAddress(addr)
		if err != nil {
			t.Fatalf("ParseAddress(%q): %v", addr, err)
		}
		if !bytes.Equal(a.Data, data) || a.Name != name {
			t.Fatalf("inline address %q carries %q named %q, want %q named %q", addr, a.Data, a.Name, data, name)
		}
		got, err := e.Retrieve(ctx, addr)
		if err != nil {
			t.Fatalf("Retrieve(%q): %v", addr, err)
		}
		if !bytes.Equal(got.Data, data) {
			t.Fatalf("Retrieve gave %q, want %q", got.Data, data)
		}
		// Any tampering with the data parameter is either refused or
		// decodes to something: never a panic.
		if i := strings.Index(addr, "data="); i >= 0 && len(addr) > i+6 {
			bad := addr[:i+5] + "%" + addr[i+6:]
			if _, err := e.Retrieve(ctx, bad); err != nil && !errors.Is(err, stash.ErrInvalidAddress) {
				t.Fatalf("Retrieve(%q): %v, want nil or ErrInvalidAddress", bad, err)
			}
		}
	})
}
