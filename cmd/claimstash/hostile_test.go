package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// readableOutput wants what the CLI printed to be something an operator's
// terminal can show safely: no control characters but newlines and tabs,
// valid UTF-8, no panic trace, no Go identifiers, and at most max bytes.
func readableOutput(t *testing.T, what, s string, max int) {
	t.Helper()
	if len(s) > max {
		t.Errorf("%s: %d bytes of output (starts %.80q); want at most %d", what, len(s), s, max)
	}
	if !utf8.ValidString(s) {
		t.Errorf("%s: output is not valid UTF-8: %.200q", what, s)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			t.Errorf("%s: output holds control character %U: %.200q", what, r, s)
			break
		}
	}
	for _, bad := range []string{"panic:", "goroutine ", "Go struct field", "Go value of type", "kcatMessage", "runtime error"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s: output holds %q: %.300q", what, bad, s)
		}
	}
	noGoIdentifiers(t, what, s)
}

// Hostile addresses on the command line: exit 2, a readable message.
func TestHostileAddressArguments(t *testing.T) {
	be, _ := backend(t)
	d := strings.Repeat("ab", 32)
	for _, addr := range []string{
		"file://default/\x1b[2J\x1b]0;pwned\a." + d,
		"\x1b[31mred",
		"file://default/\xff\xfe." + d,
		"file://default/a\x00b." + d,
		"file://default/a\r\nforged: line." + d,
		"file://default/" + strings.Repeat("a", 1<<20) + "." + d,
		"file://default/../../etc/passwd." + d,
		"file://default/%2e%2e/x." + d,
		"file://default\\..\\x." + d,
		"file:///etc/passwd." + d,
		"file://default/N." + strings.ToUpper(d),
		"file://default/x." + d[:63],
		"gopher://default/x." + d,
		"https://user:pw@evil.example/file/default/x." + d,
		"inline://default/x?data=%ZZ",
	} {
		for _, cmd := range []string{"get", "stat", "rm", "share"} {
			out, errs, code := cli(t, nil, cmd, be, "--quiet", addr)
			if code != exitUsage {
				t.Errorf("%s %.40q: exit %d; want %d (%s)", cmd, addr, code, exitUsage, errs)
			}
			readableOutput(t, cmd+" stdout", out, 4096)
			readableOutput(t, cmd+" stderr", errs, 4096)
		}
	}
}
