package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/service"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/objectstash"
)

// hideDecodedSize makes the server look like objectstore's own, which
// counts no decoded size for a zstd body sent without one.
func hideDecodedSize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(stripHeader{w, service.HeaderDecodedSize}, r)
	})
}

// TestForeignZstdWithoutDecodedSize: against objectstore's own server, a
// zstd object stored by objectstore's Python client (stream-compressed: no
// content size in the frame, none among the metadata) has no decoded size
// anywhere. The backend counts it as it reads the object, so the engine
// reads such a stash (Retrieve, Open, Stat) under its usual bounds and
// checks; before, every one was ErrTooLarge to it. Bytes that do not decode,
// or decode to another payload, or to more than the engine takes, are still
// refused.
func TestForeignZstdWithoutDecodedSize(t *testing.T) {
	ctx := context.Background()
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(hideDecodedSize(s))
	t.Cleanup(ts.Close)
	e := engineOver(t, ts.URL, stash.WithMaxSize(1<<20))
	streamed := func(p []byte) []byte { // as python-zstandard's stream_reader writes it
		var b bytes.Buffer
		w, _ := zstd.NewWriter(&b)
		_, _ = w.Write(p)
		_ = w.Close()
		return b.Bytes()
	}
	put := func(name string, payload, stored []byte) string {
		t.Helper()
		sum := sha256.Sum256(payload)
		key := name + "." + hex.EncodeToString(sum[:])
		r := do(t, "PUT", ts.URL+"/v1/objects/testing/org=42/"+key, bytes.NewReader(stored), "Content-Encoding", "zstd")
		wantStatus(t, r, 200)
		if h := do(t, "HEAD", ts.URL+"/v1/objects/testing/org=42/"+key, nil); h.Header.Get(service.HeaderDecodedSize) != "" {
			t.Fatal("the wrapper does not hide the decoded size")
		}
		return "objectstore://testing/org=42/" + key
	}

	payload := bytes.Repeat([]byte("stored by objectstore's Python client "), 5000)
	addr := put("foreign", payload, streamed(payload))
	got, err := e.Retrieve(ctx, addr)
	if err != nil || !bytes.Equal(got.Data, payload) || got.Size != int64(len(payload)) {
		t.Fatalf("Retrieve: %v", err)
	}
	r, err := e.Open(ctx, addr)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(b, payload) {
		t.Fatalf("Open: %d bytes, %v", len(b), err)
	}
	st, err := e.Stat(ctx, addr)
	if err != nil || st.Size != int64(len(payload)) || st.StoredSize >= st.Size {
		t.Fatalf("Stat: %+v, %v", st, err)
	}

	for name, c := range map[string]struct {
		payload, stored []byte
		want            error
	}{
		"not zstd":      {payload, []byte("not zstd at all"), stash.ErrIntegrity},
		"other payload": {payload, streamed([]byte("something else entirely")), stash.ErrIntegrity},
		"over the max":  {make([]byte, 2<<20), streamed(make([]byte, 2<<20)), stash.ErrTooLarge},
	} {
		addr := put("bad", c.payload, c.stored)
		if _, err := e.Retrieve(ctx, addr); !errors.Is(err, c.want) {
			t.Errorf("%s: Retrieve: %v, want %v", name, err, c.want)
		}
		if r, err := e.Open(ctx, addr); err == nil {
			_, err = io.ReadAll(r)
			r.Close()
			if !errors.Is(err, c.want) {
				t.Errorf("%s: Open and read: %v, want %v", name, err, c.want)
			}
		} else if !errors.Is(err, c.want) {
			t.Errorf("%s: Open: %v, want %v", name, err, c.want)
		}
		do(t, "DELETE", ts.URL+"/v1/objects/testing/org=42/"+addr[len("objectstore://testing/org=42/"):], nil)
	}
}

// TestForeignZstdExistence: against objectstore's own server, Put and
// Delete only ask whether an object is there, so a zstd object without a
// decoded size costs them a HEAD, not a GET that reads and decodes the
// whole object to count it (as Stat does).
func TestForeignZstdExistence(t *testing.T) {
	ctx := context.Background()
	s, err := service.New(newStore(t), service.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		hideDecodedSize(hideConditional(s)).ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	d, err := objectstash.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("stored by objectstore's Python client "), 5000)
	var b bytes.Buffer
	w, _ := zstd.NewWriter(&b)
	_, _ = w.Write(payload)
	_ = w.Close()
	sum := sha256.Sum256(payload)
	key := "foreign." + hex.EncodeToString(sum[:])
	u := ts.URL + "/v1/objects/testing/org=42/" + key
	wantStatus(t, do(t, "PUT", u, bytes.NewReader(b.Bytes()), "Content-Encoding", "zstd"), 200)
	gets.Store(0)

	other := []byte("other bytes")
	err = d.Put(ctx, "testing", "org=42/"+key, bytes.NewReader(other), int64(len(other)), &driver.Attributes{Size: int64(len(other)), StoredSize: int64(len(other))})
	if !errors.Is(err, driver.ErrExists) {
		t.Fatalf("Put over the object: %v, want ErrExists", err)
	}
	if err := d.Delete(ctx, "testing", "org=42/"+key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("Put and Delete made %d GETs, want none", n)
	}
	wantStatus(t, do(t, "HEAD", u, nil), http.StatusNotFound)
}
