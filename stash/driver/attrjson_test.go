package driver_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

func TestDecodeAttributes(t *testing.T) {
	a, err := driver.DecodeAttributes([]byte(`{"size":3,"stored_size":3,"digest":"ab","created":"2030-01-02T03:04:05Z","tti":5,"metadata":{"k":"v"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 3 || a.StoredSize != 3 || a.Digest != "ab" || !a.Created.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) || a.TTI != 5 || a.Metadata["k"] != "v" {
		t.Fatalf("decoded %+v", a)
	}
	// Go's own words: package-qualified types, "Go struct field", "Go value".
	goish := regexp.MustCompile(`Go (struct|value)|int64|driver\.|time\.|Attributes|map\[`)
	for in, want := range map[string]string{
		`{"size":"x"}`:            `field "size" holds a JSON string, want an integer in range`,
		`{"size":1e40}`:           `field "size" holds a JSON number 1e40, want an integer in range`,
		`{"tti":-1.5}`:            `field "tti" holds a JSON number -1.5, want an integer in range`,
		`{"metadata":{"a":1}}`:    `field "metadata" holds a JSON number, want a string`,
		`{"metadata":[]}`:         `field "metadata" holds a JSON array, want an object`,
		`{"created":"yesterday"}`: `a time "yesterday" that is not RFC 3339`,
		`[1]`:                     `a JSON array, want an object`,
		`"attributes"`:            `a JSON string, want an object`,
		`{"size":`:                `not JSON: unexpected end of JSON input (at byte 8)`,
		`{size:1}`:                `not JSON: invalid character 's' looking for beginning of object key string (at byte 2)`,
	} {
		_, err := driver.DecodeAttributes([]byte(in))
		if err == nil {
			t.Errorf("%s decoded", in)
			continue
		}
		if err.Error() != want {
			t.Errorf("%s: %q, want %q", in, err, want)
		}
		if goish.MatchString(err.Error()) {
			t.Errorf("%s: %q names Go identifiers", in, err)
		}
	}
}
