package service_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

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
