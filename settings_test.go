package claimstash_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/claimstash/claimstash"
	"github.com/claimstash/claimstash/stash"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string // a part of the error; "" for none
	}{
		{"10485760", 10485760, ""},
		{" 1000000 ", 1000000, ""},
		{"0", 0, ""},
		{"10MB", 10_000_000, ""},
		{"10MiB", 10 << 20, ""},
		{"64MiB", 64 << 20, ""},
		{"5 GiB", 5 << 30, ""},
		{"10 mib", 10 << 20, ""},
		{"64k", 64_000, ""},
		{"1kB", 1000, ""},
		{"1KiB", 1024, ""},
		{"1.5GB", 1_500_000_000, ""},
		{"1.5KiB", 1536, ""},
		{".5KiB", 512, ""},
		{"1.1KB", 1100, ""},
		{"100B", 100, ""},
		{"8EB", 8_000_000_000_000_000_000, ""},
		{"9223372036854775807", math.MaxInt64, ""},

		{"", 0, "want a number of bytes"},
		{"lots", 0, "want a number of bytes"},
		{"MB", 0, "want a number of bytes"},
		{".", 0, "want a number of bytes"},
		{"1.2.3", 0, "want a number of bytes"},
		{"-1", 0, "want a number of bytes"},
		{"+1", 0, "want a number of bytes"},
		{"1e3", 0, "want a number of bytes"},
		{"0x10", 0, "want a number of bytes"},
		{"10 parsecs", 0, "want a number of bytes"},
		{"1,000", 0, "without commas"},
		{"1,5MB", 0, "without commas"}, // 1.5 MB or 15 MB?
		{"1.5B", 0, "not a whole number of bytes"},
		{"1.1KiB", 0, "not a whole number of bytes"}, // 1126.4
		{"9223372036854775808", 0, "too large"},
		{"8EiB", 0, "too large"},
	} {
		got, err := claimstash.ParseSize(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error saying %q", c.in, got, err, c.err)
		}
	}
	if _, err := claimstash.ParseMaxSize("0"); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Errorf("ParseMaxSize(0): %v, want an error", err)
	}
	if n, err := claimstash.ParseMaxSize("1KiB"); n != 1024 || err != nil {
		t.Errorf("ParseMaxSize(1KiB) = %d, %v", n, err)
	}
}

func TestParseBackends(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"file:///var/lib/claimstash", []string{"file:///var/lib/claimstash"}, ""},
		{"/var/lib/claimstash", []string{"file:///var/lib/claimstash"}, ""},
		{"/var/lib/../lib/claimstash/", []string{"file:///var/lib/claimstash"}, ""},
		// A bare directory is that directory, whatever its name holds.
		{"/srv/a b", []string{"file:///srv/a%20b"}, ""},
		{"/srv/x?create_dir=true#y", []string{"file:///srv/x%3Fcreate_dir=true%23y"}, ""},
		{" /srv/a , mem:// ,, ", []string{"file:///srv/a", "mem://"}, ""},
		{"mem://,/srv/a", []string{"mem://", "file:///srv/a"}, ""},
		// A comma inside a URL's parameters stays in it.
		{"s3://?buckets=a,b", []string{"s3://?buckets=a,b"}, ""},
		{"s3://?buckets=a, b&endpoint=http://h:9000,mem://", []string{"s3://?buckets=a,b&endpoint=http://h:9000", "mem://"}, ""},
		{"mem:", []string{"mem:"}, ""},
		{"", nil, ""},
		{" , ", nil, ""},

		{"data", nil, `"data" is neither a URL nor an absolute directory`},
		{".", nil, `write "` + wd + `"`},
		{"./stashes", nil, "relative path"},
		{"mem://,./stashes", nil, `"./stashes"`},
		{"~/stashes", nil, "relative path"},
		{"ftp://x", nil, `no backend for scheme "ftp"`},
		{"1x://y", nil, `scheme "1x"`},
	} {
		got, err := claimstash.ParseBackends(c.in)
		switch {
		case c.err == "" && (err != nil || strings.Join(got, " ") != strings.Join(c.want, " ")):
			t.Errorf("ParseBackends(%q) = %q, %v; want %q", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseBackends(%q) = %q, %v; want an error saying %q", c.in, got, err, c.err)
		}
	}
	// The file backend opens the directory a bare path names, spaces and all.
	dir := filepath.Join(t.TempDir(), "a b?c")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	urls, err := claimstash.ParseBackends(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := stash.OpenDriver(context.Background(), urls[0])
	if err != nil {
		t.Fatalf("open %s: %v", urls[0], err)
	}
	d.Close()
}

// TestSchemes: the standard backends are the command line's, so a backend
// URL copied from it opens here too.
func TestSchemes(t *testing.T) {
	if got := strings.Join(stash.Schemes(), ","); got != "file,mem,nats,objectstore,s3" {
		t.Errorf("schemes %s, want file,mem,nats,objectstore,s3", got)
	}
}

// TestOpenEnvErrors: an error names the variable that was set, and no Go
// identifier.
func TestOpenEnvErrors(t *testing.T) {
	ctx := context.Background()
	key := "k:" + strings.Repeat("A", 43)
	goIdent := regexp.MustCompile(`\b(With[A-Z]\w*|New[A-Z]\w*|Parse[A-Z]\w*|Trust[A-Z]\w*|stash\.[A-Z]\w*)`)
	for _, c := range []struct {
		env  map[string]string
		name string // what the message must name
	}{
		{map[string]string{}, claimstash.EnvBackend},
		{map[string]string{claimstash.EnvBackend: "stashes"}, claimstash.EnvBackend},
		{map[string]string{claimstash.EnvBackend: "ftp://x"}, claimstash.EnvBackend},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvNamespace: "Not Valid"}, claimstash.EnvNamespace},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvMaxSize: "0"}, claimstash.EnvMaxSize},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvMaxSize: "lots"}, claimstash.EnvMaxSize},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: "k:c2hvcnQ"}, claimstash.EnvLinkKeys},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKey: "k:c2hvcnQ"}, claimstash.EnvLinkKey},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: key + "," + key}, claimstash.EnvLinkKeys},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvLinkKeys: key, claimstash.EnvShareURL: "ftp://x/"}, claimstash.EnvShareURL},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvShareURL: "ftp://x/"}, claimstash.EnvShareURL},
		{map[string]string{claimstash.EnvBackend: "mem://", claimstash.EnvTrustedOrigins: "https://a, https://h/path"}, claimstash.EnvTrustedOrigins},
	} {
		_, err := claimstash.EngineFromEnv(ctx, claimstash.WithGetenv(func(k string) string { return c.env[k] }))
		if err == nil {
			t.Errorf("%v: EngineFromEnv succeeded", c.env)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "claimstash: ") || !strings.Contains(msg, c.name) {
			t.Errorf("%v: %q: want it to start claimstash: and name %s", c.env, msg, c.name)
		}
		if id := goIdent.FindString(msg); id != "" {
			t.Errorf("%v: %q names %s", c.env, msg, id)
		}
		if strings.Contains(msg, strings.Repeat("A", 43)) {
			t.Errorf("%v: %q shows a secret", c.env, msg)
		}
	}
}

// TestOpenEnvLenient: the spellings the command line always took, a bare
// directory and a size with a unit, build the engine they say.
func TestOpenEnvLenient(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{claimstash.EnvBackend: dir, claimstash.EnvMaxSize: "1KiB"}
	e, err := claimstash.EngineFromEnv(ctx, claimstash.WithGetenv(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.MaxSize() != 1024 {
		t.Errorf("max size %d, want 1024", e.MaxSize())
	}
	s, err := e.Create(ctx, "x", make([]byte, 1024), stash.NoInline())
	if err != nil {
		t.Fatal(err)
	}
	if s.Address.Scheme != "file" {
		t.Errorf("stored at %s, want the file backend", s.Address)
	}
	if _, err := os.Stat(filepath.Join(dir, "default")); err != nil {
		t.Errorf("the stash is not under %s: %v", dir, err)
	}
	if _, err := e.Create(ctx, "y", make([]byte, 1025), stash.NoInline()); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("1025 bytes over 1KiB: %v, want ErrTooLarge", err)
	}
}

// The command line and OpenEnv read a size, and a list of backends, alike.
func ExampleParseSize() {
	for _, s := range []string{"10485760", "10MB", "10MiB", "1.5 GiB", "1,5MB"} {
		n, err := claimstash.ParseSize(s)
		fmt.Println(s, n, err)
	}
	// Output:
	// 10485760 10485760 <nil>
	// 10MB 10000000 <nil>
	// 10MiB 10485760 <nil>
	// 1.5 GiB 1610612736 <nil>
	// 1,5MB 0 want a number of bytes without commas, such as 1048576, 10MB or 10MiB
}

func ExampleParseBackends() {
	backends, err := claimstash.ParseBackends("/var/lib/claimstash, s3://?region=eu-west-1&buckets=a,b")
	fmt.Println(strings.Join(backends, "\n"), err)
	_, err = claimstash.ParseBackends("mem://,ftp://x")
	fmt.Println(err)
	// Output:
	// file:///var/lib/claimstash
	// s3://?region=eu-west-1&buckets=a,b <nil>
	// no backend for scheme "ftp" in this program (have file://, mem://, nats://, objectstore://, s3://; or an absolute directory)
}
