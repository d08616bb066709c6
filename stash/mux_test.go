package stash_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash"
	_ "github.com/claimstash/claimstash/stash/memstash"
)

// OpenDriver's errors are for an operator: they name the scheme (quoted
// and cut), say which backends this program has, name no Go concept
// ("import"), pass on no raw parser message (net/url's, which repeats the
// URL, control characters and all) and keep their categories.
func TestOpenDriverErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url   string
		want  error
		shows []string
	}{
		{"gopher://host/x", stash.ErrUnsupported, []string{`"gopher"`, "registered: ", "mem"}},
		{"GOPHER://host/x", stash.ErrUnsupported, []string{`"gopher"`, "mem"}},
		{"/var/lib/claimstash", stash.ErrUnsupported, []string{"no scheme", "mem"}},
		{"x" + strings.Repeat("y", 5000) + "://h", stash.ErrUnsupported, []string{`"xyyy`, "mem"}},
		{"mem://\x1b[2J", stash.ErrInvalidAddress, []string{`"mem"`, "control character"}},
		{"file:///var/lib/\x00x", stash.ErrInvalidAddress, []string{`"file"`, "control character"}},
		{"nats://user:secret@host:4222/%zz", stash.ErrInvalidAddress, []string{`"nats"`, "escape"}},
		{"nats://host:port", stash.ErrInvalidAddress, []string{`"nats"`, "port"}},
		{"\x1b[31m://x", stash.ErrInvalidAddress, nil},
	} {
		name := fmt.Sprintf("%.60q", tc.url)
		d, err := stash.OpenDriver(ctx, tc.url)
		if err == nil {
			d.Close()
			t.Errorf("OpenDriver(%s) succeeded", name)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, tc.want) {
			t.Errorf("OpenDriver(%s): %.300q; want %v", name, msg, tc.want)
		}
		for _, s := range tc.shows {
			if !strings.Contains(msg, s) {
				t.Errorf("OpenDriver(%s): %.300q does not say %q", name, msg, s)
			}
		}
		for _, bad := range []string{"import", "net/url", "parse ", "secret", "\x1b", "\x00"} {
			if strings.Contains(msg, bad) {
				t.Errorf("OpenDriver(%s): %.300q holds %q", name, msg, bad)
			}
		}
		if len(msg) > 300 {
			t.Errorf("OpenDriver(%s): message of %d bytes", name, len(msg))
		}
		if !strings.HasPrefix(msg, "stash: ") {
			t.Errorf("OpenDriver(%s): %.300q does not start with the package name", name, msg)
		}
	}
}
