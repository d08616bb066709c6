package readmedocs

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/objectstash"
	"github.com/claimstash/claimstash/stash/s3stash"
	"github.com/claimstash/claimstash/transports/ccnats"
	"github.com/claimstash/claimstash/transports/ccsarama"
	"github.com/claimstash/claimstash/transports/ccsns"
	"github.com/claimstash/claimstash/transports/ccsqs"
)

// defaultsTable returns the rows of the README's defaults table.
func defaultsTable(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Defaults\n")
	if i < 0 {
		t.Fatal("README has no Defaults section")
	}
	s = s[i+1:]
	if j := strings.Index(s[1:], "\n## "); j >= 0 {
		s = s[:j+1]
	}
	var rows []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| setting") && !strings.HasPrefix(l, "| ---") {
			rows = append(rows, l)
		}
	}
	if len(rows) == 0 {
		t.Fatal("README's defaults table has no rows")
	}
	return rows
}

// TestDefaultsTable checks each default the README states against its
// constant: the row naming the option must state the value, and the
// constant must be that value.
func TestDefaultsTable(t *testing.T) {
	rows := defaultsTable(t)
	cases := []struct {
		option string // a cell text that picks the row
		text   string // what the row says the default is
		ok     bool   // the constant is that value
	}{
		{"`claimcheck.WithThreshold`", "256 KiB", claimcheck.DefaultThreshold == 256<<10},
		{"`claimcheck.WithMargin`", "1 KiB", claimcheck.DefaultMargin == 1<<10},
		{"`stash.WithNamespace`", "`default`", stash.DefaultNamespace == "default"},
		{"`stash.WithInlineMax`", "100 encoded characters", stash.DefaultInlineMax == 100},
		{"`stash.WithCompressFloor`", "4 KiB", stash.DefaultCompressFloor == 4<<10},
		{"`stash.WithMaxSize`", "5 GiB", stash.DefaultMaxSize == 5<<30},
		{"`stash.WithDefaultTTL`", "none", stash.DefaultTTL == 0},
		{"`Share(ctx, address, ttl)`", "15 minutes", stash.DefaultShareTTL == 15*time.Minute},
		{"`links.WithStallTimeout`", "30 s", links.DefaultStallTimeout == 30*time.Second},
		{"`stash.WithTempDir`", "8 MiB", stash.DefaultSpoolMemory == 8<<20},
		{"`claimcheck.WithRetryDelay`", "5 s", claimcheck.DefaultRetryDelay == 5*time.Second},
		{"`s3stash.WithPartSize`", "8 MiB, 4", s3stash.DefaultPartSize == 8<<20 && s3stash.DefaultConcurrency == 4},
		{"`natsstash.WithBucketPrefix`", "`claimstash_` + namespace, 30 s", natsstash.DefaultBucketPrefix == "claimstash_" && natsstash.DefaultReadTimeout == 30*time.Second},
		{"`objectstash.WithConnectTimeout`", "100 ms, 3", objectstash.DefaultConnectTimeout == 100*time.Millisecond && objectstash.DefaultConnectRetries == 3},
		{"`objectstash.WithParallelAbove`", "64 MiB, 8 MiB, 4 at once", objectstash.DefaultParallelAbove == 64<<20 && objectstash.DefaultPartSize == 8<<20 && objectstash.DefaultConcurrency == 4},
		{"`objectstash.WithTokenLifetime`", "1 minute", objectstash.DefaultTokenLifetime == time.Minute},
		{"`service.WithMaxBodySize`", "5 GiB, 16, 64 KiB", service.DefaultMaxBodySize == 5<<30 && service.DefaultMaxScopes == 16 && service.DefaultMaxHeaderBytes == 64<<10},
		{"multipart upload lifetime", "7 days from the initiate, 1 to 10,000, 1,000", service.MultipartTTL == 7*24*time.Hour && service.MaxParts == 10000 && service.MaxListParts == 1000},
		{"`service.WithDrainDelay`", "5 s, 30 s", service.DefaultDrainDelay == 5*time.Second && service.DefaultShutdownTimeout == 30*time.Second},
		{"`osauth.OpenKeyDir`", "10 s", osauth.DefaultReload == 10*time.Second},
		{"`ccnats.WithTimeout`", "1 minute", ccnats.DefaultTimeout == time.Minute},
		{"`ccsarama.WithTimeout`", "30 s; 8", ccsarama.DefaultTimeout == 30*time.Second && ccsarama.DefaultLanes == 8},
		{"`ccsarama.WithReadAhead`", "8, 64 MiB", ccsarama.DefaultReadAhead == 8 && ccsarama.DefaultReadAheadBytes == 64<<20},
		{"retry of a stash that cannot be read", "100 ms, doubling to 5 s", ccsarama.DefaultRetryMin == 100*time.Millisecond && ccsarama.DefaultRetryMax == 5*time.Second},
		{"`ccsqs.WithMaxMessageBytes`", "1 MiB, 262,144 bytes", ccsqs.DefaultMaxMessageBytes == 1<<20 && ccsns.DefaultMaxMessageBytes == 262144},
	}
	for _, c := range cases {
		var row string
		for _, r := range rows {
			if strings.Contains(r, c.option) {
				row = r
				break
			}
		}
		switch {
		case row == "":
			t.Errorf("no row of the defaults table names %s", c.option)
		case !strings.Contains(row, c.text):
			t.Errorf("the row naming %s does not say %q:\n%s", c.option, c.text, row)
		case !c.ok:
			t.Errorf("the row naming %s says %q, which its constant no longer is", c.option, c.text)
		}
	}
}
