package service_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash/filestash"
)

func Example() {
	dir, _ := os.MkdirTemp("", "objects")
	defer os.RemoveAll(dir)
	store, err := filestash.New(dir)
	if err != nil {
		panic(err)
	}
	keyDir, _ := os.MkdirTemp("", "keys")
	defer os.RemoveAll(keyDir)
	files, _ := osauth.GenerateKey(keyDir, "relay")
	keys, _ := osauth.OpenKeyDir(keyDir, 0)
	s, err := service.New(store, service.WithAuth(osauth.NewVerifier(keys)))
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(service.Handler(s, nil))
	defer ts.Close()

	tok, _ := osauth.Mint("relay", files.Private, "attachments", []osauth.Scope{{Key: "org", Value: "42"}}, nil, 0)
	url := ts.URL + "/v1/objects/attachments/org=42/report.txt"
	req, _ := http.NewRequest("PUT", url, strings.NewReader("quarterly numbers"))
	req.Header.Set("x-os-auth", "Bearer "+tok)
	req.Header.Set("x-sn-expiration", "ttl:30 days")
	resp, _ := http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(b))

	req, _ = http.NewRequest("GET", url, nil)
	req.Header.Set("x-os-auth", "Bearer "+tok)
	resp, _ = http.DefaultClient.Do(req)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(b), resp.Header.Get("x-sn-expiration"))

	resp, _ = http.Get(url) // no token
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// 200 OK {"key":"report.txt"}
	// 200 OK quarterly numbers ttl:30d
	// 400 Bad Request
}

// Extending an object's expiry as objectstore's clients do: a PATCH with
// {"extend_expiry": …}. The deadline only moves out.
func Example_extendExpiry() {
	dir, _ := os.MkdirTemp("", "objects")
	defer os.RemoveAll(dir)
	store, err := filestash.New(dir)
	if err != nil {
		panic(err)
	}
	now := func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) }
	s, err := service.New(store, service.WithoutAuth(), service.WithClock(now))
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	url := ts.URL + "/v1/objects/attachments/org=42/report.txt"
	send := func(method, body string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp
	}
	send("PUT", "quarterly numbers", "x-sn-expiration", "ttl:1h")
	for _, ext := range []string{`{"extend_expiry":{"after":"30d","from":"now"}}`, `{"extend_expiry":{"at":"2026-05-02T00:00:00Z"}}`} {
		resp := send("PATCH", ext, "Content-Type", "application/json")
		head := send("HEAD", "")
		fmt.Println(resp.Status, head.Header.Get("x-sn-expiration"), head.Header.Get("x-sn-time-expires"))
	}
	// Output:
	// 204 No Content ttl:30d 2026-05-31T12:00:00.000000Z
	// 204 No Content ttl:30d 2026-05-31T12:00:00.000000Z
}
