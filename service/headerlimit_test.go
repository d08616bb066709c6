package service_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// TestMetadataOverHeaderLimit: a stash whose metadata does not fit the
// server's header limit (NewHTTPServer: DefaultMaxHeaderBytes, answered
// 431) is ErrTooLarge to the engine, like a payload over the body limit.
func TestMetadataOverHeaderLimit(t *testing.T) {
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := service.NewHTTPServer(s)
	go hs.Serve(ln)
	defer hs.Close()
	d, err := objectstash.New("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	e := engineOn(t, d)
	big := map[string]string{"note": strings.Repeat("m", service.DefaultMaxHeaderBytes)}
	_, err = e.Create(context.Background(), "big-meta", []byte("payload"), stash.Metadata(big))
	if !errors.Is(err, stash.ErrTooLarge) {
		t.Fatalf("Create with %d bytes of metadata: %v, want ErrTooLarge", len(big["note"]), err)
	}
}
