package service_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/claimstash/claimstash/stash"
)

// TestForeignGzip: objectstore's Rust client compresses with gzip on
// request, and objectstore's server takes it. The server stores such a
// body as sent and serves it labelled, from a PUT and from a batch insert.
// A Go engine does not decode gzip: reading the object through objectstash
// is ErrUnsupported, never the gzip bytes taken for the payload.
func TestForeignGzip(t *testing.T) {
	ts, _ := open(t)
	e := engineOver(t, ts.URL)
	for _, how := range []string{"put", "batch"} {
		payload := bytes.Repeat([]byte("compressed with gzip by another client "+how+" "), 3000)
		sum := sha256.Sum256(payload)
		key := "foreign." + hex.EncodeToString(sum[:])
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write(payload)
		w.Close()
		switch how {
		case "put":
			wantStatus(t, do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/"+key, bytes.NewReader(gz.Bytes()), "Content-Encoding", "gzip"), 200)
		case "batch":
			_, res := batch(t, ts.URL+"/v1/objects:batch/testing/org=42/", []op{{kind: "insert", key: key, hdr: map[string]string{"Content-Encoding": "gzip"}, body: gz.Bytes()}})
			if len(res) != 1 || res[0].status != "201" {
				t.Fatalf("batch insert: %+v", res)
			}
		}
		u := ts.URL + "/v1/objects/testing/org=42/" + key
		// Accept-Encoding set, so that Go's client does not undo gzip.
		r := do(t, "GET", u, nil, "Accept-Encoding", "identity")
		wantStatus(t, r, 200)
		if got := readAll(t, r); got != gz.String() {
			t.Fatalf("%s: GET: %d bytes, not the %d gzip bytes sent", how, len(got), gz.Len())
		}
		r = do(t, "HEAD", u, nil, "Accept-Encoding", "identity")
		wantStatus(t, r, http.StatusNoContent)
		if ce, n := r.Header.Get("Content-Encoding"), r.Header.Get("x-sn-size"); ce != "gzip" || n != strconv.Itoa(gz.Len()) {
			t.Fatalf("%s: HEAD: content-encoding %q, x-sn-size %q; want gzip, %d", how, ce, n, gz.Len())
		}
		got, err := e.Retrieve(context.Background(), "objectstore://testing/org=42/"+key)
		if !errors.Is(err, stash.ErrUnsupported) {
			t.Fatalf("%s: Retrieve of a gzip object: %v, %v; want ErrUnsupported", how, got, err)
		}
	}
}
