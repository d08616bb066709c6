package kstash

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/claimstash/claimstash/stash"
)

// Hostile kstash addresses and links: a typed error whose message is
// bounded, valid UTF-8 and free of control characters, whatever the
// address held (it is what an operator's terminal or log shows).
func TestHostileAddressErrorsReadable(t *testing.T) {
	s, _, _ := memStore(t)
	md5 := strings.Repeat("0", 32)
	for _, addr := range []string{
		"mem://default/\x1b[2J\x1b]0;pwned\a." + md5,
		"\x1b[31mred",
		"mem://default/\xff\xfe." + md5,
		"mem://default/a\x00b." + md5,
		"mem://default/a\r\nforged: log line." + md5,
		"mem://default/" + strings.Repeat("a", 1<<20) + "." + md5,
		"inline://default/x?data=%ZZ\x1b[2J",
		"mem://default/x\u202e." + md5,
		"https://evil.example/bucket/x\x1b[2J." + md5,
		"https://evil.example/bucket/x\u202e." + md5,
	} {
		_, err := s.Retrieve(context.Background(), addr)
		if !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("Retrieve(%.40q): %v; want ErrInvalidAddress", addr, err)
			continue
		}
		msg := err.Error()
		if len(msg) > 1024 {
			t.Errorf("Retrieve(%.40q): error message of %d bytes; want at most 1 KiB", addr, len(msg))
		}
		if !utf8.ValidString(msg) {
			t.Errorf("Retrieve(%.40q): error message is not UTF-8: %.120q", addr, msg)
		}
		for _, r := range msg {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u202e' {
				t.Errorf("Retrieve(%.40q): error message holds %U: %.120q", addr, r, msg)
				break
			}
		}
	}
}

// A value that points at itself is ErrUnsupportedValue, as a list that
// holds itself is: following it overflowed the goroutine's stack, a fatal
// error that no recover catches, taking the whole process down.
func TestSelfReferentialValues(t *testing.T) {
	var self any
	self = &self
	var viaSlice any
	viaSlice = []*any{&viaSlice}
	list := []any{nil}
	list[0] = list
	for name, v := range map[string]any{"pointer to itself": self, "slice of pointers to itself": viaSlice, "list holding itself": list} {
		if b, err := Marshal(v); !errors.Is(err, ErrUnsupportedValue) {
			t.Errorf("Marshal(%s): %x, %v; want ErrUnsupportedValue", name, b, err)
		}
		s, _, _ := memStore(t)
		if st, err := s.Create(context.Background(), "loop", v); !errors.Is(err, ErrUnsupportedValue) {
			t.Errorf("Create(%s): %v, %v; want ErrUnsupportedValue", name, st, err)
		}
	}
	// A pointer chain short of MaxDepth is still the value it points to.
	v := any("x")
	for range 10 {
		p := v
		v = &p
	}
	b, err := Marshal(v)
	if err != nil || string(b) != "\xa1x" {
		t.Errorf("Marshal of a 10-pointer chain to \"x\": %x, %v; want a178", b, err)
	}
}
