package stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// sha is the hex SHA-256 of p.
func sha(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}

var (
	d64 = sha([]byte("payload"))
	d32 = "0123456789abcdef0123456789abcdef"
)

func TestParseAddressValid(t *testing.T) {
	for _, c := range []struct {
		in   string
		want stash.Address
		alg  string
	}{
		{"mem://default/orders." + d64, stash.Address{Scheme: "mem", Namespace: "default", Name: "orders", Digest: d64}, stash.DigestSHA256},
		{"file://ns-1/a.b_c-D." + d64, stash.Address{Scheme: "file", Namespace: "ns-1", Name: "a.b_c-D", Digest: d64}, stash.DigestSHA256},
		{"s3://bucket/legacy." + d32, stash.Address{Scheme: "s3", Namespace: "bucket", Name: "legacy", Digest: d32}, stash.DigestMD5},
		// The digest follows the last dot, whatever the name holds.
		{"s3://bucket/" + d64[:31] + "." + d32, stash.Address{Scheme: "s3", Namespace: "bucket", Name: d64[:31], Digest: d32}, stash.DigestMD5},
		{"s3://bucket/" + d64 + "." + d32, stash.Address{Scheme: "s3", Namespace: "bucket", Name: d64, Digest: d32}, stash.DigestMD5},
		{"mem://default/" + d32 + "." + d64, stash.Address{Scheme: "mem", Namespace: "default", Name: d32, Digest: d64}, stash.DigestSHA256},
		{"mem://default/a." + d64 + "." + d64, stash.Address{Scheme: "mem", Namespace: "default", Name: "a." + d64, Digest: d64}, stash.DigestSHA256},
		{"nats://store/x." + d64, stash.Address{Scheme: "nats", Namespace: "store", Name: "x", Digest: d64}, stash.DigestSHA256},
		{
			"mem://default/org=42/project=1337/orders." + d64,
			stash.Address{Scheme: "mem", Namespace: "default", Scopes: []stash.Scope{{"org", "42"}, {"project", "1337"}}, Name: "orders", Digest: d64},
			stash.DigestSHA256,
		},
		{
			// Order matters and is kept.
			"mem://default/project=1337/org=42/orders." + d64,
			stash.Address{Scheme: "mem", Namespace: "default", Scopes: []stash.Scope{{"project", "1337"}, {"org", "42"}}, Name: "orders", Digest: d64},
			stash.DigestSHA256,
		},
		{"inline://default/hi?data=aGVsbG8%3D", stash.Address{Scheme: "inline", Namespace: "default", Name: "hi", Data: []byte("hello")}, ""},
		{"inline://default/hi?data=aGVsbG8=", stash.Address{Scheme: "inline", Namespace: "default", Name: "hi", Data: []byte("hello")}, ""},
		{"inline://default/empty?data=", stash.Address{Scheme: "inline", Namespace: "default", Name: "empty", Data: []byte{}}, ""},
		{"inline://default/t=1/hi?data=aGk%3D", stash.Address{Scheme: "inline", Namespace: "default", Scopes: []stash.Scope{{"t", "1"}}, Name: "hi", Data: []byte("hi")}, ""},
	} {
		t.Run(c.in, func(t *testing.T) {
			a, err := stash.ParseAddress(c.in)
			if err != nil {
				t.Fatalf("ParseAddress: %v", err)
			}
			if a.Scheme != c.want.Scheme || a.Namespace != c.want.Namespace || a.Name != c.want.Name || a.Digest != c.want.Digest ||
				!slices.Equal(a.Scopes, c.want.Scopes) || !bytes.Equal(a.Data, c.want.Data) {
				t.Fatalf("ParseAddress = %+v, want %+v", a, c.want)
			}
			if got := a.DigestAlgorithm(); got != c.alg {
				t.Errorf("DigestAlgorithm() = %q, want %q", got, c.alg)
			}
			if a.IsInline() != (c.want.Scheme == "inline") {
				t.Errorf("IsInline() = %v", a.IsInline())
			}
			// String round-trips: to the same address (the canonical form
			// may escape differently), and from there to the same string.
			s := a.String()
			b, err := stash.ParseAddress(s)
			if err != nil {
				t.Fatalf("ParseAddress(String()) = %v for %q", err, s)
			}
			if b.String() != s || !bytes.Equal(a.Data, b.Data) || !slices.Equal(a.Scopes, b.Scopes) {
				t.Errorf("round trip: %q -> %q", s, b.String())
			}
			if !a.IsInline() && s != c.in {
				t.Errorf("String() = %q, want %q", s, c.in)
			}
		})
	}
}

func TestParseAddressInvalid(t *testing.T) {
	long := strings.Repeat("n", stash.MaxNameLength+1)
	for _, c := range []struct{ why, in string }{
		{"empty", ""},
		{"no scheme", "default/orders." + d64},
		{"scheme outside the grammar", "Ftp://default/orders." + d64},
		{"scheme with underscore", "my_store://default/orders." + d64},
		{"a share link is no address", "https://default/orders." + d64},
		{"http is not a stash scheme", "http://default/orders." + d64},
		{"uppercase scheme", "MEM://default/orders." + d64},
		{"no path", "mem://default"},
		{"empty namespace", "mem:///orders." + d64},
		{"absolute path", "mem:///etc/passwd." + d64},
		{"uppercase namespace", "mem://Default/orders." + d64},
		{"namespace with underscore", "mem://de_fault/orders." + d64},
		{"namespace leading hyphen", "mem://-ns/orders." + d64},
		{"namespace trailing hyphen", "mem://ns-/orders." + d64},
		{"long namespace", "mem://" + strings.Repeat("a", stash.MaxNamespaceLength+1) + "/orders." + d64},
		{"dotdot name", "mem://default/..." + d64},
		{"dotdot segment", "mem://default/../orders." + d64},
		{"dot segment", "mem://default/./orders." + d64},
		{"empty segment", "mem://default//orders." + d64},
		{"trailing slash", "mem://default/orders." + d64 + "/"},
		{"hidden name", "mem://default/.orders." + d64},
		{"name leading hyphen", "mem://default/-orders." + d64},
		{"NUL", "mem://default/ord\x00ers." + d64},
		{"NUL in namespace", "mem://def\x00ault/orders." + d64},
		{"encoded slash", "mem://default/a%2Fb." + d64},
		{"encoded dotdot", "mem://default/%2E%2E." + d64},
		{"backslash", `mem://default/a\b.` + d64},
		{"space", "mem://default/a b." + d64},
		{"non-ASCII", "mem://default/é." + d64},
		{"overlong name", "mem://default/" + long + "." + d64},
		{"overlong address", "mem://default/" + strings.Repeat("s=1/", 300) + "orders." + d64},
		{"no digest", "mem://default/orders"},
		{"empty digest", "mem://default/orders."},
		{"empty name", "mem://default/." + d64},
		{"short digest", "mem://default/orders." + d64[:63]},
		{"long digest", "mem://default/orders." + d64 + "0"},
		{"40-hex digest", "mem://default/orders." + d64[:40]},
		{"uppercase digest", "mem://default/orders." + strings.ToUpper(d64)},
		{"non-hex digest", "mem://default/orders." + strings.Repeat("g", 64)},
		{"query on non-inline", "mem://default/orders." + d64 + "?data=aGk%3D"},
		{"fragment", "mem://default/orders." + d64 + "#x"},
		{"userinfo", "mem://user@default/orders." + d64},
		{"port", "mem://default:80/orders." + d64},
		{"scope without =", "mem://default/org/orders." + d64},
		{"scope uppercase key", "mem://default/Org=1/orders." + d64},
		{"scope key digit first", "mem://default/1org=1/orders." + d64},
		{"scope empty value", "mem://default/org=/orders." + d64},
		{"scope dotdot value", "mem://default/org=../orders." + d64},
		{"scope double =", "mem://default/org=1=2/orders." + d64},
		{"too many scopes", "mem://default/" + strings.Repeat("s=1/", stash.MaxScopes+1) + "orders." + d64},
		{"inline without data", "inline://default/hi"},
		{"inline other parameter", "inline://default/hi?x=aGk%3D"},
		{"inline two parameters", "inline://default/hi?data=aGk%3D&x=1"},
		{"inline data twice", "inline://default/hi?data=aGk%3D&data=aGk%3D"},
		{"inline not base64", "inline://default/hi?data=***"},
		{"inline bad escape", "inline://default/hi?data=%zz"},
		{"inline non-canonical base64", "inline://default/hi?data=aGl%3D"},
		{"inline unpadded", "inline://default/hi?data=aGk"},
		{"inline with digest-like name is still checked", "inline://default/../hi?data=aGk%3D"},
		{"inline overlong", "inline://default/hi?data=" + strings.Repeat("A", 64<<10)},
	} {
		t.Run(c.why, func(t *testing.T) {
			a, err := stash.ParseAddress(c.in)
			if !errors.Is(err, stash.ErrInvalidAddress) {
				t.Fatalf("ParseAddress(%.80q) = %+v, %v; want ErrInvalidAddress", c.in, a, err)
			}
			if !strings.HasPrefix(err.Error(), "stash: invalid address") {
				t.Errorf("error %q does not start with the package prefix", err)
			}
		})
	}
}

func TestAddressKey(t *testing.T) {
	a := stash.Address{Scheme: "mem", Namespace: "ns", Scopes: []stash.Scope{{"org", "42"}, {"project", "1"}}, Name: "orders", Digest: d64}
	if got, want := a.Key(), "org=42/project=1/orders."+d64; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
	if got, want := a.String(), "mem://ns/org=42/project=1/orders."+d64; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestValidateNameAndNamespace(t *testing.T) {
	for _, ok := range []string{"a", "orders", "A-1_b.c", strings.Repeat("x", stash.MaxNameLength)} {
		if err := stash.ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".x", "-x", "a/b", "a\x00", strings.Repeat("x", stash.MaxNameLength+1)} {
		if err := stash.ValidateName(bad); !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidAddress", bad, err)
		}
	}
	for _, ok := range []string{"a", "default", "a-b", "x1", strings.Repeat("n", stash.MaxNamespaceLength)} {
		if err := stash.ValidateNamespace(ok); err != nil {
			t.Errorf("ValidateNamespace(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "a_b", "-a", "a-", "a.b", "a/b", strings.Repeat("n", stash.MaxNamespaceLength+1)} {
		if err := stash.ValidateNamespace(bad); !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("ValidateNamespace(%q) = %v, want ErrInvalidAddress", bad, err)
		}
	}
	for _, sc := range []stash.Scope{{"", "1"}, {"K", "1"}, {"k-1", "1"}, {strings.Repeat("k", 33), "1"}, {"k", ""}, {"k", "."}, {"k", ".."}, {"k", "a/b"}, {"k", strings.Repeat("v", 65)}} {
		if err := sc.Validate(); !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("Scope%+v.Validate() = %v, want ErrInvalidAddress", sc, err)
		}
	}
}

// TestParseAddressNoRegistry: the parser consults no registry, so an address
// of a scheme no package registered still parses; the engine refuses it.
func TestParseAddressNoRegistry(t *testing.T) {
	d := strings.Repeat("ab", 32)
	a, err := stash.ParseAddress("objstore+v1://default/orders." + d)
	if err != nil || a.Scheme != "objstore+v1" {
		t.Fatalf("ParseAddress = %+v, %v", a, err)
	}
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Retrieve(context.Background(), a.String())
	if !errors.Is(err, stash.ErrUnsupported) || !errors.Is(err, stash.ErrInvalidAddress) {
		t.Fatalf("Retrieve of an unserved scheme: %v; want ErrUnsupported and ErrInvalidAddress", err)
	}
}
