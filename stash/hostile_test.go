package stash_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Hostile addresses through every read of the public API: a typed error
// whose message an operator can read in a terminal or a log, bounded in
// length, valid UTF-8 and free of control characters, whatever the
// address held.
func TestHostileAddressErrorsReadable(t *testing.T) {
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := strings.Repeat("0", 64)
	for _, addr := range []string{
		"mem://default/\x1b[2J\x1b]0;pwned\a." + d,
		"\x1b[31mred",
		"mem://default/\xff\xfe." + d,
		"mem://default/a\x00b." + d,
		"mem://default/a\r\nforged: log line." + d,
		"mem://default/" + strings.Repeat("a", 1<<20) + "." + d,
		strings.Repeat("\x00", 1<<20),
		"inline://default/x?data=" + strings.Repeat("QUFB", 32<<10),
		"inline://default/x?data=%ZZ\x1b[2J",
		"mem://default/x.\u202e" + d,
	} {
		for op, call := range map[string]func() error{
			"Retrieve": func() error { _, err := e.Retrieve(ctx, addr); return err },
			"Open":     func() error { _, err := e.Open(ctx, addr); return err },
			"Stat":     func() error { _, err := e.Stat(ctx, addr); return err },
			"Delete":   func() error { return e.Delete(ctx, addr) },
			"Share":    func() error { _, err := e.Share(ctx, addr, 0); return err },
		} {
			err := call()
			if !errors.Is(err, stash.ErrInvalidAddress) {
				t.Errorf("%s(%.40q): %v; want ErrInvalidAddress", op, addr, err)
				continue
			}
			msg := err.Error()
			if len(msg) > 1024 {
				t.Errorf("%s(%.40q): error message of %d bytes; want at most 1 KiB", op, addr, len(msg))
			}
			if !utf8.ValidString(msg) {
				t.Errorf("%s(%.40q): error message is not UTF-8: %.120q", op, addr, msg)
			}
			for _, r := range msg {
				if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u202e' {
					t.Errorf("%s(%.40q): error message holds %U: %.120q", op, addr, r, msg)
					break
				}
			}
		}
	}
}
