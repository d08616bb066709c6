package driver_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	_ "github.com/claimstash/claimstash/stash/filestash"
	_ "github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/objectstash"
	_ "github.com/claimstash/claimstash/stash/s3stash"
)

// Every backend URL opener refuses, when the URL is opened and before any
// request, a URL that can never work: a host where none belongs, a port
// out of range, an empty host or port, an unknown or malformed parameter.
// Each refusal matches stash.ErrInvalidAddress, as an address that does
// not parse does, and names its backend.
func TestOpenURLRefusesBadHostsAndPorts(t *testing.T) {
	// Hosts are loopback addresses or names that are never looked up
	// (objectstore and file do no I/O at open), so that an opener that
	// does connect talks to nothing but this machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad := map[string][]string{
		"filestash": {
			"file://host:99999/var/lib/x",
			"file://host/var/lib/x",
			"file://relative/dir",
			"file:///var/lib/x?nosync=maybe",
			"file:///var/lib/x?colour=blue",
		},
		"objectstash": {
			"objectstore://host:99999",
			"objectstore://host:65536/base",
			"objectstore://host:0",
			"objectstore://host:",
			"objectstore://:8080",
			"objectstore://[::1]:70000",
			"objectstore://h%C3%A9st:8080",
			"objectstore:///nohost",
			"objectstore://host:8080?colour=blue",
			"objectstore://host:8080?retries=-1",
		},
		"s3stash": {
			"s3://host:99999",
			"s3://?endpoint=" + url.QueryEscape("http://127.0.0.1:99999"),
			"s3://?endpoint=" + url.QueryEscape("http://:9000"),
			"s3://?endpoint=" + url.QueryEscape("http://127.0.0.1:"),
			"s3://?endpoint=ftp://x",
			"s3://?colour=blue",
		},
		"natsstash": {
			"nats://127.0.0.1:99999",
			"nats://127.0.0.1:0",
			"nats://:4222",
			"nats://127.0.0.1:",
			"nats://[::1]:70000",
			"nats://127.0.0.1:4222/some/path",
			"nats://127.0.0.1:4222?colour=blue",
			"nats://127.0.0.1:4222?replicas=x",
		},
	}
	for pkg, urls := range bad {
		for _, raw := range urls {
			start := time.Now()
			d, err := stash.OpenDriver(ctx, raw)
			if err == nil {
				d.Close()
				t.Errorf("OpenDriver(%q) opened, want an error", raw)
				continue
			}
			if !errors.Is(err, stash.ErrInvalidAddress) {
				t.Errorf("OpenDriver(%q): %v; want ErrInvalidAddress", raw, err)
			}
			if !strings.Contains(err.Error(), pkg+": ") {
				t.Errorf("OpenDriver(%q): %v; want it to name %s", raw, err, pkg)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("OpenDriver(%q) took %v: refused after trying to connect", raw, d)
			}
		}
	}
	// What is well formed still opens (neither file nor objectstore
	// connect at open).
	for _, ok := range []string{
		"objectstore://host:8080", "objectstore://host:65535/base", "objectstore://[::1]:8080?plaintext=true",
		"objectstore://127.0.0.1", "objectstore://stash-1.internal.example:443",
		"file://" + t.TempDir(),
	} {
		d, err := stash.OpenDriver(ctx, ok)
		if err != nil {
			t.Errorf("OpenDriver(%q): %v", ok, err)
			continue
		}
		d.Close()
	}
	// objectstash.New checks its endpoint the same way.
	for _, ep := range []string{"http://host:99999", "https://:443", "http://host:"} {
		if _, err := objectstash.New(ep); !errors.Is(err, driver.ErrInvalidAddress) {
			t.Errorf("objectstash.New(%q): %v; want ErrInvalidAddress", ep, err)
		}
	}
}
