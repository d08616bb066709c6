package settings_test

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/claimstash/claimstash" // the standard backends
	"github.com/claimstash/claimstash/internal/settings"
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
		got, err := settings.ParseSize(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error saying %q", c.in, got, err, c.err)
		}
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

		// A relative directory is the one it names from here, now.
		{"data", []string{fileURL(wd, "data")}, ""},
		{".", []string{fileURL(wd, "")}, ""},
		{"./stashes", []string{fileURL(wd, "stashes")}, ""},
		{"../stashes", []string{fileURL(filepath.Dir(wd), "stashes")}, ""},
		{"mem://,./stashes", []string{"mem://", fileURL(wd, "stashes")}, ""},
		{"~/stashes", nil, "no shell expanded"},
		{"c:stashes", nil, `no backend for scheme "c"`},
		{"ftp://x", nil, `no backend for scheme "ftp"`},
		{"1x://y", nil, `scheme "1x"`},
	} {
		got, err := settings.ParseBackends(c.in)
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
	urls, err := settings.ParseBackends(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := stash.OpenDriver(context.Background(), urls[0])
	if err != nil {
		t.Fatalf("open %s: %v", urls[0], err)
	}
	d.Close()
}

// The command line and OpenEnv read a size, and a list of backends, alike.
func ExampleParseSize() {
	for _, s := range []string{"10485760", "10MB", "10MiB", "1.5 GiB", "1,5MB"} {
		n, err := settings.ParseSize(s)
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
	backends, err := settings.ParseBackends("/var/lib/claimstash, s3://?region=eu-west-1&buckets=a,b")
	fmt.Println(strings.Join(backends, "\n"), err)
	_, err = settings.ParseBackends("mem://,ftp://x")
	fmt.Println(err)
	// Output:
	// file:///var/lib/claimstash
	// s3://?region=eu-west-1&buckets=a,b <nil>
	// no backend for scheme "ftp" in this program (have file://, mem://, nats://, objectstore://, s3://; or a directory)
}

// fileURL is the file backend URL of dir/name.
func fileURL(dir, name string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, name))}).String()
}
