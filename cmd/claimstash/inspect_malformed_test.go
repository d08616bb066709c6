package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// inspect of a message whose contract does not parse shows what the
// message carries: the size header as written (or that it is missing) and
// the body, not the zero values of a size and an address it never held.
func TestInspectMalformedShowsMessage(t *testing.T) {
	be, _ := backend(t)
	addr := "file://default/orders." + strings.Repeat("0", 64)
	kcat := func(headers []string) string {
		b, _ := json.Marshal(map[string]any{"topic": "orders", "headers": headers, "payload": addr})
		return string(b) + "\n"
	}
	for _, tc := range []struct {
		name    string
		headers []string
		want    string
	}{
		{"plus", []string{"claimstash-version", "1", "claimstash-size", "+292"}, "claimstash-size: +292\n"},
		{"leading-zero", []string{"claimstash-version", "1", "claimstash-size", "0292"}, "claimstash-size: 0292\n"},
		{"missing", []string{"claimstash-version", "1"}, "claimstash-size: (missing)\n"},
		{"version", []string{"claimstash-version", "2", "claimstash-size", "292"}, "claimstash-size: 292\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := cli(t, strings.NewReader(kcat(tc.headers)), "inspect", be)
			if code != exitUsage {
				t.Errorf("exit %d; want %d (%s)", code, exitUsage, errs)
			}
			for _, want := range []string{tc.want, "address: " + addr + "\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
