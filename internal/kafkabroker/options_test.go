package kafkabroker

import (
	"os"
	"strings"
	"testing"
)

// TestReservedProperty: the listener, node and directory settings are the
// harness's; an option that sets one is refused before anything starts.
func TestReservedProperty(t *testing.T) {
	for _, k := range []string{"listeners", "log.dirs", "node.id", "process.roles"} {
		b, reason, err := tryLaunch([]Option{WithProperty(k, "x")})
		if reason != "" {
			if os.Getenv("CI") == "true" {
				t.Fatal(reason)
			}
			t.Skip(reason)
		}
		if b != nil || err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("WithProperty(%q): broker %v, error %v; want it refused", k, b, err)
		}
	}
}
