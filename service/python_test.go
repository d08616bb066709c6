package service_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
)

// TestOfficialPythonClient drives the server with objectstore's own Python
// client (testdata/python), over a loopback socket, with a key pair written
// by osauth.GenerateKey and a token minted by osauth.Signer.
func TestOfficialPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("python peers take a few seconds; skipped with -short")
	}
	pypeer.Python(t) // skip (fail under CI=true) without the virtualenv
	dir := t.TempDir()
	files, err := osauth.GenerateKey(dir, osauth.NewKid())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := osauth.OpenKeyDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := service.New(newStore(t), service.WithAuth(osauth.NewVerifier(keys)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	signer, err := osauth.NewSigner(files.Kid, files.Private)
	if err != nil {
		t.Fatal(err)
	}
	scopes := []osauth.Scope{{Key: "org", Value: "42"}, {Key: "project", Value: "7"}}
	tok, err := signer.Token("testing", scopes, nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"res":         map[string]string{"os:usecase": "testing", "org": "42", "project": "7"},
		"permissions": osauth.AllPermissions,
		"exp":         time.Now().Add(-time.Minute).Unix(),
	})
	expired.Header["kid"] = files.Kid
	expiredTok, err := expired.SignedString(signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := pypeer.Run(t, ctx, []string{
		"OS_URL=" + ts.URL, "OS_KID=" + files.Kid, "OS_KEY=" + files.Private,
		"OS_GO_TOKEN=" + tok, "OS_EXPIRED_TOKEN=" + expiredTok,
	}, "-m", "pytest", "-q", "-p", "no:cacheprovider", filepath.Join("testdata", "python"))
	t.Logf("%s", out)
}
