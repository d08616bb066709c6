package service_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// peerServer is what the official clients' tests share: the server and
// key pair of openAuth, a token osauth.Signer minted for
// testing/org=42;project=7, the same token already expired, and a Go
// engine on the server through the objectstore backend, signing its own
// tokens.
type peerServer struct {
	*authFixture
	token, expiredTok string
	engine            *stash.Engine
}

func newPeerServer(t *testing.T) *peerServer {
	t.Helper()
	f := openAuth(t)
	tok, err := f.signer.Token("testing", scopes, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"res":         map[string]string{"os:usecase": "testing", "org": "42", "project": "7"},
		"permissions": osauth.AllPermissions,
		"exp":         time.Now().Add(-time.Minute).Unix(),
	})
	expired.Header["kid"] = f.files.Kid
	expiredTok, err := expired.SignedString(f.signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := objectstash.New(f.ts.URL, objectstash.WithSigner(f.signer))
	if err != nil {
		t.Fatal(err)
	}
	return &peerServer{authFixture: f, token: tok, expiredTok: expiredTok, engine: engineOn(t, backend)}
}
