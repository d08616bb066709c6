package osauth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
)

// TestTokenClaimsOneMeaning: a payload the JSON decoder would read
// leniently (a member given twice, whose last would win; a claim in another
// case, which it would match; a time claim as a string, which it would
// read as a number) is refused, so the token means one thing to every
// verifier. Time claims are checked as the spec says.
func TestTokenClaimsOneMeaning(t *testing.T) {
	f := newFixture(t)
	// The payload is written by hand to hold what no encoder writes; the
	// library signs it.
	raw := func(payload string) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"relay","typ":"JWT"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodEdDSA.Sign(h+"."+p, f.signer.Key)
		if err != nil {
			t.Fatal(err)
		}
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	exp := f.now.Add(time.Minute).Unix()
	res := `"res":{"os:usecase":"testing","org":"17","project":"42"}`
	perms := `"permissions":["object.read"]`
	for name, tc := range map[string]struct {
		payload string
		want    error
	}{
		"control":                {fmt.Sprintf(`{%s,%s,"exp":%d}`, res, perms, exp), nil},
		"exp with a fraction":    {fmt.Sprintf(`{%s,%s,"exp":%d.5}`, res, perms, exp), nil},
		"aud as an array":        {fmt.Sprintf(`{%s,%s,"exp":%d,"aud":["x","objectstore"]}`, res, perms, exp), nil},
		"aud array without ours": {fmt.Sprintf(`{%s,%s,"exp":%d,"aud":["x"]}`, res, perms, exp), osauth.ErrUnauthenticated},
		"iat in the future":      {fmt.Sprintf(`{%s,%s,"exp":%d,"iat":%d}`, res, perms, exp, exp+3600), nil},
		"nbf in the future":      {fmt.Sprintf(`{%s,%s,"exp":%d,"nbf":%d}`, res, perms, exp, f.now.Add(time.Second).Unix()), osauth.ErrUnauthenticated},
		"exp in the year 9999":   {fmt.Sprintf(`{%s,%s,"exp":253402300799}`, res, perms), nil},
		"exp too big for time":   {fmt.Sprintf(`{%s,%s,"exp":1e300}`, res, perms), osauth.ErrUnauthenticated},
		"exp a string":           {fmt.Sprintf(`{%s,%s,"exp":"%d"}`, res, perms, exp), osauth.ErrUnauthenticated},
		"nbf a string":           {fmt.Sprintf(`{%s,%s,"exp":%d,"nbf":"0"}`, res, perms, exp), osauth.ErrUnauthenticated},
		"exp null":               {fmt.Sprintf(`{%s,%s,"exp":null}`, res, perms), osauth.ErrUnauthenticated},
		"exp twice":              {fmt.Sprintf(`{%s,%s,"exp":1,"exp":%d}`, res, perms, exp), osauth.ErrUnauthenticated},
		"permissions twice":      {fmt.Sprintf(`{%s,"permissions":[],%s,"exp":%d}`, res, perms, exp), osauth.ErrUnauthenticated},
		"res twice":              {fmt.Sprintf(`{"res":{"os:usecase":"other"},%s,%s,"exp":%d}`, res, perms, exp), osauth.ErrUnauthenticated},
		"usecase twice in res":   {fmt.Sprintf(`{"res":{"os:usecase":"other","org":"17","project":"42","os:usecase":"testing"},%s,"exp":%d}`, perms, exp), osauth.ErrUnauthenticated},
		"EXP":                    {fmt.Sprintf(`{%s,%s,"EXP":%d}`, res, perms, exp), osauth.ErrUnauthenticated},
		"exp and Exp":            {fmt.Sprintf(`{%s,%s,"exp":1,"Exp":%d}`, res, perms, exp), osauth.ErrUnauthenticated},
		"Res":                    {fmt.Sprintf(`{"Res":{"os:usecase":"testing","org":"17","project":"42"},%s,"exp":%d}`, perms, exp), osauth.ErrUnauthenticated},
		"Permissions":            {fmt.Sprintf(`{%s,"Permissions":["object.read"],"exp":%d}`, res, exp), osauth.ErrUnauthenticated},
		"unknown claim kept":     {fmt.Sprintf(`{%s,%s,"exp":%d,"x":{"a":[1,{"b":2}],"c":"exp"}}`, res, perms, exp), nil},
	} {
		err := f.v.VerifyToken(raw(tc.payload), req)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
