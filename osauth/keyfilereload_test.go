package osauth_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/claimstash/claimstash/osauth"
)

// TestKeyFileRotation: a JSON key file opened by LoadKeys is reread, so a
// key taken out of it is refused and one added is accepted without a
// restart; a file that does not parse keeps the previous keys and says so;
// a file that is gone refuses every kid.
func TestKeyFileRotation(t *testing.T) {
	f := newFixture(t)
	spare, err := osauth.GenerateKey(f.dir, "spare")
	if err != nil {
		t.Fatal(err)
	}
	relayPub, _ := os.ReadFile(filepath.Join(f.dir, "relay.pub"))
	sparePub, _ := os.ReadFile(spare.Public)
	path := filepath.Join(t.TempDir(), "keys.json")
	write := func(b []byte) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	config := func(pubs map[string][]byte) []byte {
		c := map[string]map[string]map[string]string{"keys": {}}
		for kid, p := range pubs {
			c["keys"][kid] = map[string]string{"public_key": string(p)}
		}
		b, _ := json.Marshal(c)
		return b
	}
	write(config(map[string][]byte{"relay": relayPub, "spare": sparePub}))
	src, err := osauth.LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(*osauth.KeyFile); !ok {
		t.Fatalf("LoadKeys of a file: %T, want *osauth.KeyFile", src)
	}
	kf, err := osauth.OpenKeyFile(path, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	v := osauth.NewVerifier(kf, osauth.WithClock(func() time.Time { return f.now }))
	tok, _ := f.signer.Token("testing", req.Scopes, nil, time.Hour)
	check := func(step string, want error) {
		t.Helper()
		time.Sleep(30 * time.Millisecond)
		if err := v.VerifyToken(tok, req); want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", step, err, want)
		}
	}
	check("at start", nil)
	write(config(map[string][]byte{"spare": sparePub}))
	check("after relay was taken out", osauth.ErrUnauthenticated)
	write(config(map[string][]byte{"relay": relayPub, "spare": sparePub}))
	check("after relay was put back", nil)
	write([]byte(`{"keys": {"relay": `))
	check("while the file does not parse", nil)
	if kf.Err() == nil {
		t.Fatal("Err is nil while the file does not parse")
	}
	write(config(map[string][]byte{}))
	check("after every key was taken out", osauth.ErrUnauthenticated)
	write(config(map[string][]byte{"relay": relayPub}))
	check("after relay was put back again", nil)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check("after the file was removed", osauth.ErrUnauthenticated)
	if !errors.Is(kf.Err(), os.ErrNotExist) {
		t.Fatalf("Err = %v, want the file's absence", kf.Err())
	}
}
