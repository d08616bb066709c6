package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// TestForeignZstd: objectstore's clients compress with zstd by default
// and send no decoded size. The server counts it as it stores the body
// (a PUT, with or without a length, or a batch insert), so a Go engine
// reading the object through objectstash can bound its decoding by it;
// without it, every such stash was ErrTooLarge to the engine. A body that
// is not zstd is stored as sent, without a decoded size.
func TestForeignZstd(t *testing.T) {
	ts, _ := open(t)
	e := engineOver(t, ts.URL)
	enc, _ := zstd.NewWriter(nil)
	for i, how := range []string{"put", "put-chunked", "batch"} {
		payload := bytes.Repeat([]byte("compressed by another client "+how+" "), 3000)
		sum := sha256.Sum256(payload)
		key := "foreign." + hex.EncodeToString(sum[:])
		comp := enc.EncodeAll(payload, nil)
		switch how {
		case "put":
			wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/"+key, bytes.NewReader(comp), "Content-Encoding", "zstd"), 200)
		case "put-chunked":
			r := do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/"+key, struct{ *bytes.Reader }{bytes.NewReader(comp)}, "Content-Encoding", "zstd")
			wantStatus(t, r, 200)
			if r.Request.ContentLength != -1 && r.Request.ContentLength != 0 {
				t.Fatalf("want a body without a length, sent %d", r.Request.ContentLength)
			}
		case "batch":
			_, res := batch(t, ts.URL+"/v1/objects:batch/testing/org=42/", []op{{kind: "insert", key: key, hdr: map[string]string{"Content-Encoding": "zstd"}, body: comp}})
			if len(res) != 1 || res[0].status != "201" {
				t.Fatalf("batch insert: %+v", res)
			}
		}
		r := do(t, "HEAD", ts.URL+"/v1/objects/testing/org=42/"+key, nil)
		wantStatus(t, r, http.StatusNoContent)
		got, err := e.Retrieve(context.Background(), "objectstore://testing/org=42/"+key)
		if err != nil {
			t.Fatalf("%d %s: Retrieve: %v", i, how, err)
		}
		if !bytes.Equal(got.Data, payload) {
			t.Fatalf("%s: Retrieve: not the payload", how)
		}
	}
	// Not zstd at all: stored as sent, served as stored, no decoded size.
	u := ts.URL + "/v1/objects/testing/org=42/garbage"
	wantStatus(t, do(t, "PUT", u, bytes.NewReader([]byte("not zstd at all")), "Content-Encoding", "zstd"), 200)
	r := do(t, "GET", u, nil)
	if got := readAll(t, r); got != "not zstd at all" || r.Header.Get("x-snme-claimstash-size") != "" {
		t.Fatalf("GET of an undecodable zstd body: %q, size %q", got, r.Header.Get("x-snme-claimstash-size"))
	}
}

// engineOver is engineOn over objectstash talking to the server at url.
func engineOver(t *testing.T, url string, opts ...stash.Option) *stash.Engine {
	t.Helper()
	d, err := objectstash.New(url)
	if err != nil {
		t.Fatal(err)
	}
	return engineOn(t, d, opts...)
}
