package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds on what the CLI echoes of input it did not write itself (header
// values, addresses, bodies, error messages quoting them), so a hostile
// message can neither drive the operator's terminal nor flood it.
const (
	maxShownValue = 256  // one header value, address or version
	maxShownLine  = 1024 // one line of an error message
)

// shown is s as it is safe to print: control characters (C0, DEL, C1) and
// bytes that are not UTF-8 escaped as \xNN (\n, \r and \t as such), and
// anything past max bytes cut, with how much was cut.
func shown(s string, max int) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || unsafeRune(r) {
			clean = false
			break
		}
		i += n
	}
	if clean && len(s) <= max {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if b.Len() >= max {
			fmt.Fprintf(&b, "… (%d more bytes)", len(s)-i)
			break
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafeRune(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports a rune a terminal acts on rather than shows.
func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029' ||
		r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' // bidirectional overrides
}

// shownMessage is an error message as it is safe to print: each of its
// lines (errors joined one per line) made safe and cut to maxShownLine.
func shownMessage(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = shown(l, maxShownLine)
	}
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("… (%d more lines)", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}
