package stash_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/claimstash/claimstash/internal/benchratio"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// overHTTP is a store whose stored bytes come from an HTTP server on
// loopback (plain net/http serving them from memory), its attributes from
// the store it wraps: a remote store with no code of claimstash's between
// the socket and the engine.
type overHTTP struct {
	driver.Driver
	url string
}

func (d overHTTP) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	a, err := d.Stat(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	return resp.Body, a, nil
}

// BenchmarkStreamAhead is Retrieve of a stash stored as given whose bytes
// arrive over HTTP on loopback, hashed while the rest arrives (readAhead,
// the "decorated" side) against read and hashed in turn (the "plain"
// side), in alternating batches in one run. ratio under 1 is read-ahead's
// gain.
func BenchmarkStreamAhead(b *testing.B) {
	for _, c := range []struct {
		size, batch int
	}{{1 << 20, 8}, {8 << 20, 4}} {
		b.Run(fmt.Sprintf("random-%dMiB", c.size>>20), func(b *testing.B) {
			good, store := memEngine(b)
			p := stashtest.RandomPayload(c.size, 1)
			s, err := good.Create(context.Background(), "ahead", p)
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(p)))
				_, _ = w.Write(p)
			}))
			defer ts.Close()
			e, err := stash.New(stash.WithBackend(overHTTP{store, ts.URL}), stash.WithInlineMax(-1))
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			defer stash.SetSequentialReads(false)
			retrieve := func(n int) {
				for range n {
					if got, err := e.Retrieve(context.Background(), s.String()); err != nil || len(got.Data) != c.size {
						b.Fatalf("Retrieve: %v", err)
					}
				}
			}
			b.SetBytes(int64(c.size))
			benchratio.Interleave(b, c.batch,
				benchratio.Path{Prepare: func(int) { stash.SetSequentialReads(true) }, Run: retrieve},
				benchratio.Path{Prepare: func(int) { stash.SetSequentialReads(false) }, Run: retrieve})
		})
	}
}
