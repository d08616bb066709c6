package links_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
)

// Raw edits of a share link's path and query, as an outside tester types
// them: encoded traversal, separators, doubled slashes, bytes that are not
// UTF-8, another alphabet or padding for the signature, credentials and
// ports in the origin. The handler answers 403 (never 200, never 500) and a
// fetching engine refuses each with a typed error, never data.
func TestShareRawTampering(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	a := create(t, e, "a", payload(4<<10))
	create(t, e, "b", payload(4<<10))
	link, err := e.Share(ctx, a.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(link, "?")
	sig := query[strings.Index(query, "sig=")+4:]
	if i := strings.IndexByte(sig, '&'); i >= 0 {
		sig = sig[:i]
	}
	key := a.Address.Key()
	origin := s.srv.URL
	host := strings.TrimPrefix(origin, "https://")
	replace := func(old, new string) string { return strings.Replace(link, old, new, 1) }
	cases := map[string]string{
		"encoded dot-dot":        replace("/default/", "/default/%2e%2e/default/"),
		"dot-dot":                replace("/default/", "/default/../default/"),
		"encoded slash":          replace("/default/", "/default%2f"),
		"backslash":              replace("/default/", "/default\\"),
		"encoded backslash":      replace("/default/", "/default%5c"),
		"double slash":           replace("/default/", "/default//"),
		"trailing slash":         path + "/?" + query,
		"scope inserted":         replace("/"+key, "/org=1/"+key),
		"not utf-8":              replace("/"+key, "/%ff"+key),
		"nul":                    replace("/"+key, "/%00"+key),
		"name case":              replace("/a.", "/A."),
		"digest case":            replace(key, strings.ToUpper(key[:3])+key[3:]),
		"digest cut":             replace(key, key[:len(key)-1]),
		"digest grown":           replace(key, key+"0"),
		"path params":            replace("/"+key, "/"+key+";x=1"),
		"signature padded":       replace("sig="+sig, "sig="+sig+"="),
		"signature std alphabet": replace("sig="+sig, "sig="+strings.NewReplacer("-", "+", "_", "/").Replace(sig)+"+"),
		"signature doubled":      link + "&sig=" + sig,
		"signature empty":        replace("sig="+sig, "sig="),
		"signature huge":         replace("sig="+sig, "sig="+strings.Repeat("A", 6<<10)),
		"expiry signed":          replace("exp=", "exp=-"),
		"expiry huge":            replace("exp=", "exp=99999999999999999999"),
		"query semicolon":        replace("?", "?x=1;"),
		"userinfo":               replace(host, "user:pw@"+host),
		"overlong":               link + "&pad=" + strings.Repeat("x", stash.MaxLinkLength),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if bad == link {
				t.Fatal("edit changed nothing")
			}
			if req, err := http.NewRequest(http.MethodGet, bad, nil); err == nil && req.URL.User == nil {
				resp, err := s.srv.Client().Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK || resp.StatusCode >= 500 {
						t.Errorf("GET %q: %d, want a refusal", bad, resp.StatusCode)
					}
				}
			}
			got, err := s.client(t).Retrieve(ctx, bad)
			if got != nil || err == nil {
				t.Fatalf("Retrieve of a tampered link returned data (%v)", err)
			}
			if !errors.Is(err, stash.ErrInvalidAddress) && !errors.Is(err, stash.ErrExpired) {
				t.Errorf("Retrieve: %v; want ErrForbidden, ErrInvalidAddress or ErrExpired", err)
			}
			checkReadable(t, err)
		})
	}
	if got, err := s.client(t).Retrieve(ctx, link); err != nil || got == nil {
		t.Fatalf("the untouched link: %v", err)
	}
}

func checkReadable(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 1024 {
		t.Errorf("error message of %d bytes", len(msg))
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			t.Errorf("error message holds %U: %.200q", r, msg)
			break
		}
	}
}

// Other spellings of a trusted origin, or of a host beside it, are not
// trusted: each is refused before any request reaches a server.
func TestUntrustedOriginSpellings(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	a := create(t, e, "a", payload(1<<10))
	link, err := e.Share(ctx, a.String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hostport := strings.TrimPrefix(s.srv.URL, "https://")
	host, port, _ := strings.Cut(hostport, ":")
	swap := func(o string) string { return strings.Replace(link, "https://"+hostport, o, 1) }
	for name, bad := range map[string]string{
		"http downgrade":     swap("http://" + hostport),
		"trailing dot":       swap("https://" + host + ".:" + port),
		"default port":       swap("https://" + host),
		"other port":         swap("https://" + host + ":1" + port),
		"decimal address":    swap("https://2130706433:" + port),
		"mapped ipv6":        swap("https://[::ffff:" + host + "]:" + port),
		"ipv6 loopback":      swap("https://[::1]:" + port),
		"localhost":          swap("https://localhost:" + port),
		"suffix host":        swap("https://" + hostport + ".evil.example"),
		"backslash userinfo": swap("https://evil.example\\@" + hostport),
		"at in path":         swap("https://evil.example/@" + hostport),
		"upper scheme":       strings.Replace(link, "https://", "HTTPS://", 1),
		"encoded host":       swap("https://%31" + hostport[1:]),
	} {
		t.Run(name, func(t *testing.T) {
			hits := s.hits.Load()
			got, err := s.client(t).Retrieve(ctx, bad)
			if got != nil || !errors.Is(err, stash.ErrInvalidAddress) {
				t.Errorf("Retrieve(%q): %v; want ErrForbidden or ErrInvalidAddress", bad, err)
			}
			if n := s.hits.Load() - hits; n != 0 {
				t.Errorf("Retrieve(%q) made %d requests to the server", bad, n)
			}
		})
	}
}
