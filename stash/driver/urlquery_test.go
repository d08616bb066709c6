package driver_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash/driver"
)

func TestURLParams(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    map[string]string
		wantErr string
	}{
		{query: "", want: map[string]string{}},
		{query: "a=1&b=two", want: map[string]string{"a": "1", "b": "two"}},
		{query: "a=", want: map[string]string{"a": ""}},
		{query: "a=1&a=2", wantErr: `URL parameter "a" given 2 times`},
		{query: "a=%zz", wantErr: "URL query"},
	} {
		got, err := driver.URLParams(&url.URL{Scheme: "x", RawQuery: tc.query})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v, want %v", tc.query, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", tc.query, k, got[k], v)
			}
		}
	}
}
