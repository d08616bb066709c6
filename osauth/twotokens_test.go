package osauth_test

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/claimstash/claimstash/osauth"
)

// TestTokensThatDisagree: a request carrying two different tokens (in
// x-os-auth twice, x-os-auth and a bearer Authorization, a header and
// os_auth) is refused whichever of them would pass, so nothing in front of
// the server can go by one while the server goes by the other; the same
// token twice, and another scheme in Authorization (a proxy's), are not.
func TestTokensThatDisagree(t *testing.T) {
	f := newFixture(t)
	good, err := f.signer.Token("testing", req.Scopes, []osauth.Permission{osauth.Read}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second) // another token for the same request
	other, err := f.signer.Token("testing", req.Scopes, []osauth.Permission{osauth.Read}, time.Hour)
	if err != nil || other == good {
		t.Fatalf("second token: %v (same: %v)", err, other == good)
	}
	type hdr struct{ k, v string }
	for name, tc := range map[string]struct {
		hdrs  []hdr
		query string
		want  error
	}{
		"x-os-auth":                       {[]hdr{{"x-os-auth", "Bearer " + good}}, "", nil},
		"same token in both headers":      {[]hdr{{"x-os-auth", "Bearer " + good}, {"Authorization", "Bearer " + good}}, "", nil},
		"same token in header and query":  {[]hdr{{"Authorization", "Bearer " + good}}, good, nil},
		"proxy's Basic beside x-os-auth":  {[]hdr{{"x-os-auth", "Bearer " + good}, {"Authorization", "Basic dTpw"}}, "", nil},
		"empty x-os-auth beside a bearer": {[]hdr{{"x-os-auth", ""}, {"Authorization", "Bearer " + good}}, "", nil},
		"x-os-auth and Authorization":     {[]hdr{{"x-os-auth", "Bearer " + good}, {"Authorization", "Bearer " + other}}, "", osauth.ErrUnauthenticated},
		"Authorization and x-os-auth":     {[]hdr{{"Authorization", "Bearer " + good}, {"x-os-auth", "Bearer " + other}}, "", osauth.ErrUnauthenticated},
		"x-os-auth twice":                 {[]hdr{{"x-os-auth", "Bearer " + good}, {"x-os-auth", "Bearer " + other}}, "", osauth.ErrUnauthenticated},
		"x-os-auth and garbage":           {[]hdr{{"x-os-auth", "Bearer " + good}, {"x-os-auth", "garbage"}}, "", osauth.ErrUnauthenticated},
		"header and query":                {[]hdr{{"x-os-auth", "Bearer " + good}}, other, osauth.ErrUnauthenticated},
	} {
		target := "http://h/v1/objects/testing/org=17;project=42/k"
		if tc.query != "" {
			target += "?" + osauth.ParamAuth + "=" + url.QueryEscape(tc.query)
		}
		r := httptest.NewRequest("GET", target, nil)
		for _, h := range tc.hdrs {
			r.Header.Add(h.k, h.v)
		}
		err := f.v.Authorize(r, req)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
