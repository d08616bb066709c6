package claimcheck_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Forged and truncated references, as an outside tester sends them: each
// is refused with a typed, permanent error, no payload, and an error
// message an operator can read in a terminal: bounded in length, valid
// UTF-8, no control characters, whatever the message carried.
func TestRehydrateForgedReferences(t *testing.T) {
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := claimcheck.New(e, claimcheck.AllowStore("mem", "default"))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("the real payload ", 100))
	s, err := e.Create(ctx, "real", payload)
	if err != nil {
		t.Fatal(err)
	}
	good := s.String()
	digest := s.Address.Digest
	size := fmt.Sprint(len(payload))
	huge := strings.Repeat("9", 1<<20)
	inline64k := "inline://default/x?data=" + strings.Repeat("QUFB", 48<<10/4)

	for _, tc := range []struct {
		name          string
		version, size string
		body          string
		want          error
	}{
		{"version-2", "2", size, good, claimcheck.ErrUnsupportedVersion},
		{"version-empty", "", size, good, claimcheck.ErrUnsupportedVersion},
		{"version-padded", "1 ", size, good, claimcheck.ErrUnsupportedVersion},
		{"version-huge", huge, size, good, claimcheck.ErrUnsupportedVersion},
		{"version-escape", "\x1b[2J\x1b]0;pwned\a", size, good, claimcheck.ErrUnsupportedVersion},
		{"version-not-utf8", "\xff\xfe", size, good, claimcheck.ErrUnsupportedVersion},
		{"size-missing", "1", "", good, claimcheck.ErrMalformed},
		{"size-negative", "1", "-1", good, claimcheck.ErrMalformed},
		{"size-hex", "1", "0x10", good, claimcheck.ErrMalformed},
		{"size-spaced", "1", " " + size, good, claimcheck.ErrMalformed},
		{"size-overflow", "1", "99999999999999999999", good, claimcheck.ErrMalformed},
		{"size-huge", "1", huge, good, claimcheck.ErrMalformed},
		{"size-escape", "1", "\x1b[31m5", good, claimcheck.ErrMalformed},
		{"size-lies", "1", fmt.Sprint(len(payload) + 1), good, stash.ErrIntegrity},
		{"size-lies-zero", "1", "0", good, stash.ErrIntegrity},
		{"body-empty", "1", size, "", claimcheck.ErrMalformed},
		{"body-spaces", "1", size, " " + good, claimcheck.ErrMalformed},
		{"body-truncated", "1", size, good[:len(good)-1], stash.ErrInvalidAddress},
		{"body-truncated-to-scheme", "1", size, "mem://", stash.ErrInvalidAddress},
		{"body-huge", "1", size, strings.Repeat("m", 1<<20), claimcheck.ErrMalformed},
		{"body-huge-address", "1", size, "mem://default/" + strings.Repeat("a", 1<<20) + "." + digest, claimcheck.ErrMalformed},
		{"body-long-address", "1", size, "mem://default/" + strings.Repeat("a", 8<<10) + "." + digest, stash.ErrInvalidAddress},
		{"body-not-utf8", "1", size, "mem://default/\xff\xfe." + digest, stash.ErrInvalidAddress},
		{"body-nul", "1", size, "mem://default/a\x00b." + digest, stash.ErrInvalidAddress},
		{"body-escape", "1", size, "\x1b[2J\x1b]0;pwned\a", stash.ErrInvalidAddress},
		{"body-escape-in-address", "1", size, "mem://default/\x1b[2J." + digest, stash.ErrInvalidAddress},
		{"traversal", "1", size, "mem://default/../../etc/passwd." + digest, stash.ErrInvalidAddress},
		{"traversal-encoded", "1", size, "mem://default/%2e%2e/real." + digest, stash.ErrInvalidAddress},
		{"traversal-slash-encoded", "1", size, "mem://default/a%2freal." + digest, stash.ErrInvalidAddress},
		{"windows-separators", "1", size, "mem://default\\..\\real." + digest, stash.ErrInvalidAddress},
		{"absolute", "1", size, "mem:///etc/real." + digest, stash.ErrInvalidAddress},
		{"digest-upper", "1", size, "mem://default/real." + strings.ToUpper(digest), stash.ErrInvalidAddress},
		{"digest-short", "1", size, "mem://default/real." + digest[:63], stash.ErrInvalidAddress},
		{"digest-algorithm-prefix", "1", size, "mem://default/real.sha256:" + digest, stash.ErrInvalidAddress},
		{"digest-other", "1", size, "mem://default/real." + strings.Repeat("0", 64), stash.ErrNotFound},
		{"digest-md5-form", "1", size, "mem://default/real." + digest[:32], stash.ErrNotFound},
		{"unknown-scheme", "1", size, "gopher://default/real." + digest, claimcheck.ErrNotAllowed},
		{"scheme-upper", "1", size, "MEM://default/real." + digest, stash.ErrInvalidAddress},
		{"other-namespace", "1", size, "mem://other/real." + digest, claimcheck.ErrNotAllowed},
		{"link-untrusted", "1", size, "https://evil.example/mem/default/real." + digest, claimcheck.ErrNotAllowed},
		{"link-userinfo", "1", size, "https://u:p@evil.example/mem/default/real." + digest, stash.ErrInvalidAddress},
		{"link-ipv6-port", "1", size, "http://[::1]:9/mem/default/real." + digest, claimcheck.ErrNotAllowed},
		{"inline-size-lies", "1", "4", "inline://default/x?data=QUFB", stash.ErrIntegrity},
		{"inline-huge-size-lies", "1", "1", inline64k, stash.ErrIntegrity},
		{"inline-bad-base64", "1", "3", "inline://default/x?data=QUF!", stash.ErrInvalidAddress},
		{"inline-two-params", "1", "3", "inline://default/x?data=QUFB&data=QUFB", stash.ErrInvalidAddress},
		{"inline-too-long", "1", "3", "inline://default/x?data=" + strings.Repeat("QUFB", 32<<10), claimcheck.ErrMalformed},
		{"inline-largest-size-lies", "1", "3", "inline://default/x?data=" + strings.Repeat("QUFB", 16<<10-8), stash.ErrIntegrity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := claimcheck.MapHeaders{claimcheck.HeaderVersion: tc.version}
			if tc.size != "" {
				h[claimcheck.HeaderSize] = tc.size
			}
			out, _, err := c.Rehydrate(ctx, "orders", []byte(tc.body), h)
			if err == nil {
				t.Fatalf("Rehydrate accepted the forged reference and returned %d bytes", len(out))
			}
			if out != nil {
				t.Errorf("Rehydrate returned %d bytes with its error", len(out))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Rehydrate: %v; want an error matching %v", err, tc.want)
			}
			if !claimcheck.IsPermanent(err) {
				t.Errorf("Rehydrate: %v is not permanent: the message would be redelivered for ever", err)
			}
			checkReadable(t, err)
			if _, ok := h[claimcheck.HeaderVersion]; !ok {
				t.Errorf("a failed Rehydrate removed the contract headers")
			}
			// Through the decision the transports use: never Deliver.
			body := []byte(tc.body)
			_, d, err := c.RehydrateInPlace(ctx, claimcheck.Incoming{Topic: "orders", Body: &body, Headers: h})
			if d == claimcheck.Deliver || err == nil {
				t.Errorf("RehydrateInPlace: %v, %v; want a failure that is not delivered", d, err)
			}
			if string(body) != tc.body {
				t.Errorf("RehydrateInPlace changed the body of a message it did not deliver")
			}
		})
	}
}

// checkReadable wants an error message an operator can read: at most a
// few KiB, valid UTF-8, without control characters.
func checkReadable(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 2048 {
		t.Errorf("error message of %d bytes (starts %.80q); want at most 2 KiB", len(msg), msg)
	}
	if !utf8.ValidString(msg) {
		t.Errorf("error message is not valid UTF-8: %.200q", msg)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			t.Errorf("error message holds control character %U: %.200q", r, msg)
			break
		}
	}
}

// The topic is the publisher's choice too (a NATS subject may hold any
// byte but whitespace, and a wildcard subscription delivers it): errors
// show one that is not printable quoted and cut, as they show addresses.
func TestErrorQuotesHostileTopic(t *testing.T) {
	ctx := context.Background()
	c := newMemChecker(t)
	for _, topic := range []string{"orders.\x1b[2J\x1b]0;pwned\a", "orders.\u202egnp", "orders." + strings.Repeat("x", 64<<10), "orders.\xff"} {
		h := claimcheck.MapHeaders{claimcheck.HeaderVersion: "2", claimcheck.HeaderSize: "1"}
		_, _, err := c.Rehydrate(ctx, topic, []byte("mem://default/x."+strings.Repeat("0", 64)), h)
		if !errors.Is(err, claimcheck.ErrUnsupportedVersion) {
			t.Fatalf("Rehydrate: %v", err)
		}
		checkReadable(t, err)
		if _, _, err := c.Offload(ctx, topic, []byte("x"), claimcheck.MapHeaders{claimcheck.HeaderOffload: "\x1b[2J"}); err == nil {
			t.Fatal("Offload took a bad override")
		} else {
			checkReadable(t, err)
		}
	}
	// A printable topic reads as it is.
	_, _, err := c.Rehydrate(ctx, "orders.eu", []byte("x"), claimcheck.MapHeaders{claimcheck.HeaderVersion: "2"})
	if err == nil || !strings.HasPrefix(err.Error(), "claimcheck: rehydrate on orders.eu ") {
		t.Errorf("error %v", err)
	}
}
