package kstash

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

func memStore(t *testing.T, opts ...Option) (*Store, *memstash.Store, *stash.Engine) {
	t.Helper()
	mem := memstash.New()
	eng, err := stash.New(stash.WithBackend(mem))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(eng, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, mem, eng
}

// TestReadmeAddresses: the addresses of kstash's README, but the S3 one,
// which TestS3 checks against MinIO.
func TestReadmeAddresses(t *testing.T) {
	ctx := context.Background()
	s, _, _ := memStore(t)
	st, err := s.Create(ctx, "colorcode", 12, InNamespace("stashes"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.String(), "inline://stashes/colorcode?data=DA%3D%3D"; got != want {
		t.Errorf("colorcode: %s, want %s", got, want)
	}
	// Config(backends=["mem"]): no inline.
	memOnly, _, _ := memStore(t, WithInlineMax(-1))
	st, err = memOnly.Create(ctx, "object", Map{{"data", 123}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.String(), "mem://default/object.34472d91b2f84052bf26d4eaa862ef86"; got != want {
		t.Errorf("object: %s, want %s", got, want)
	}
	got, err := memOnly.Retrieve(ctx, st.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Value, Map{{"data", int64(123)}}) || !bytes.Equal(got.Encoded, st.Encoded) || got.Address.String() != st.String() {
		t.Errorf("retrieved %#v", got)
	}
	loaded, err := memOnly.Retrieve(ctx, "inline://stashes/colorcode?data=DA%3D%3D")
	if err != nil || loaded.Value != int64(12) {
		t.Errorf("retrieve colorcode: %v, %v", loaded, err)
	}
}

// TestStoredRaw: the backend holds msgpack(value) and nothing else.
func TestStoredRaw(t *testing.T) {
	ctx := context.Background()
	s, mem, eng := memStore(t, WithNamespace("stashes"))
	value := Map{{"as_of", "today"}, {"bin", bytes.Repeat([]byte{'0'}, 524288)}}
	st, err := s.Create(ctx, "context", value)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.String(), "mem://stashes/context.c6ab205fe81dcad3eec3ab48b96b0618"; got != want {
		t.Fatalf("address %s, want %s", got, want)
	}
	rc, attrs, err := mem.Get(ctx, "stashes", "context.c6ab205fe81dcad3eec3ab48b96b0618")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	want, _ := Marshal(value)
	if !bytes.Equal(raw, want) || len(raw) != 524310 {
		t.Errorf("stored %d bytes, want msgpack(value), %d bytes", len(raw), len(want))
	}
	if attrs.Encoding != driver.EncodingIdentity || attrs.Digest != st.MD5() {
		t.Errorf("attributes %+v", attrs)
	}
	// A second create writes nothing and gives the same address.
	again, err := s.Create(ctx, "context", value)
	if err != nil || again.String() != st.String() {
		t.Errorf("second create: %v, %v", again, err)
	}
	// The engine deletes it like any stash.
	if err := eng.Delete(ctx, st.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Retrieve(ctx, st.String()); !errors.Is(err, stash.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
}

func TestCreateOptions(t *testing.T) {
	ctx := context.Background()
	s, _, _ := memStore(t)
	st, err := s.Create(ctx, "n", 1, NoInline(), InNamespace("other"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Address.Scheme != memstash.Scheme || st.Address.Namespace != "other" {
		t.Errorf("address %s", st)
	}
	// 75 encoded bytes (base64 of 100 characters) inline; 76 (104) do not.
	for n, inline := range map[int]bool{73: true, 74: false} {
		b := make([]byte, n)
		enc, _ := Marshal(b)
		st, err := s.Create(ctx, "b", b)
		if err != nil {
			t.Fatal(err)
		}
		if st.Address.IsInline() != inline {
			t.Errorf("%d encoded bytes: inline = %v, want %v", len(enc), st.Address.IsInline(), inline)
		}
	}
	for _, name := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := s.Create(ctx, name, 1); !errors.Is(err, stash.ErrInvalidAddress) {
			t.Errorf("name %q: %v, want ErrInvalidAddress", name, err)
		}
	}
	if _, err := s.Create(ctx, "x", 1, InNamespace("Bad_NS")); !errors.Is(err, stash.ErrInvalidAddress) {
		t.Errorf("bad namespace: %v", err)
	}
	if _, err := s.Create(ctx, "x", struct{}{}); !errors.Is(err, ErrUnsupportedValue) {
		t.Errorf("struct value: %v", err)
	}
	// The largest inline address, escaped at its worst ("/" is %2F), still parses.
	wide, _, _ := memStore(t, WithInlineMax(MaxInlineMax))
	ff := bytes.Repeat([]byte{0xff}, MaxInlineMax/4*3-5)
	st, err = wide.Create(ctx, "ff", ff)
	if err != nil || !st.Address.IsInline() {
		t.Fatalf("widest inline: %v, %v", st, err)
	}
	if got, err := wide.Retrieve(ctx, st.String()); err != nil || !bytes.Equal(got.Value.([]byte), ff) {
		t.Errorf("retrieve of %d-character inline address: %v", len(st.String()), err)
	}
	inlineOnly, err := New(mustEngine(t, stash.WithInlineMax(100)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inlineOnly.Create(ctx, "big", make([]byte, 1000)); !errors.Is(err, stash.ErrTooLarge) {
		t.Errorf("inline-only store, big value: %v, want ErrTooLarge", err)
	}
}

func mustEngine(t *testing.T, opts ...stash.Option) *stash.Engine {
	t.Helper()
	e, err := stash.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestNew(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("nil engine accepted")
	}
	eng := mustEngine(t, stash.WithBackend(memstash.New()))
	if _, err := New(eng, WithScheme(SchemeS3)); err == nil {
		t.Error("scheme without a backend accepted")
	}
	if _, err := New(eng, WithNamespace("UPPER")); err == nil {
		t.Error("bad namespace accepted")
	}
	if _, err := New(eng, WithInlineMax(MaxInlineMax+1)); err == nil {
		t.Error("inline limit over MaxInlineMax accepted")
	}
	if _, err := New(eng, WithInlineMax(-1)); err != nil {
		t.Errorf("mem only: %v", err)
	}
	eng = mustEngine(t, stash.WithBackend(prefixed{memstash.New()}))
	if _, err := New(eng); err == nil || !strings.Contains(err.Error(), "bucket") {
		t.Errorf("prefixed S3 layout: %v", err)
	}
}

// prefixed is a driver that keeps keys under a prefix, as s3stash does
// with Options.Prefix.
type prefixed struct{ *memstash.Store }

func (prefixed) Locate(ns, key string) (string, string) { return ns, "pre/" + key }

func (prefixed) Scheme() string { return SchemeS3 }

func TestRetrieveErrors(t *testing.T) {
	ctx := context.Background()
	s, mem, eng := memStore(t, WithInlineMax(-1))
	st, err := s.Create(ctx, "v", "data")
	if err != nil {
		t.Fatal(err)
	}
	if st.MD5() != "266f01c5105567ba27fece1c0383227f" {
		t.Fatalf("md5 %s", st.MD5())
	}

	// Bytes that do not match their md5 (as a kstash writer with a bug,
	// or bit rot, would leave them).
	key := "w.266f01c5105567ba27fece1c0383227f"
	other, _ := Marshal("dat4")
	put(t, mem, "default", key, other)
	if _, err := s.Retrieve(ctx, "mem://default/"+key); !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("tampered: %v, want ErrIntegrity", err)
	}
	// Creating over it: the object there is not ours.
	if _, err := s.Create(ctx, "w", "data"); !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("create over other bytes: %v, want ErrIntegrity", err)
	}

	// Bytes that match their md5 but are not msgpack.
	junk := []byte{0xc1, 0x00}
	jkey := "junk." + md5Hex(junk)
	put(t, mem, "default", jkey, junk)
	_, err = s.Retrieve(ctx, "mem://default/"+jkey)
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("junk: %v, want ErrMalformed", err)
	}
	if strings.Count(err.Error(), "mem://default/"+jkey) != 1 || !strings.HasPrefix(err.Error(), "kstash: retrieve ") {
		t.Errorf("error message %q: want the address once, after kstash: retrieve", err)
	}

	for addr, want := range map[string]error{
		"mem://default/missing.266f01c5105567ba27fece1c0383227f":                                  stash.ErrNotFound,
		"mem://default/v.9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08":        stash.ErrInvalidAddress,
		"mem://default/org=1/v.266f01c5105567ba27fece1c0383227f":                                  stash.ErrInvalidAddress,
		"nats://default/v.266f01c5105567ba27fece1c0383227f":                                       stash.ErrUnsupported,
		"mem://default/v.266F01C5105567BA27FECE1C0383227F":                                        stash.ErrInvalidAddress,
		"inline://default/v?data=wQ%3D%3D":                                                        ErrMalformed,
		"inline://default/v?data=%%%":                                                             stash.ErrInvalidAddress,
		"ftp://default/v.266f01c5105567ba27fece1c0383227f":                                        stash.ErrInvalidAddress,
		"https://evil.example/default/v.266f01c5105567ba27fece1c0383227f":                         stash.ErrForbidden,
		"https://evil.example/a/b/v.266f01c5105567ba27fece1c0383227f":                             stash.ErrInvalidAddress,
		"https://evil.example/v.9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": stash.ErrInvalidAddress,
	} {
		if _, err := s.Retrieve(ctx, addr); !errors.Is(err, want) {
			t.Errorf("Retrieve(%s): %v, want %v", addr, err, want)
		}
	}
	_ = eng
}

func put(t *testing.T, d driver.Driver, ns, key string, b []byte) {
	t.Helper()
	n := int64(len(b))
	if err := d.Put(context.Background(), ns, key, bytes.NewReader(b), n, &driver.Attributes{Size: n, StoredSize: n}); err != nil {
		t.Fatal(err)
	}
}

func TestShareUnsupported(t *testing.T) {
	ctx := context.Background()
	s, _, _ := memStore(t, WithInlineMax(-1))
	st, err := s.Create(ctx, "v", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Share(ctx, st.String(), time.Minute); !errors.Is(err, stash.ErrUnsupported) {
		t.Errorf("mem share: %v, want ErrUnsupported", err)
	}
	if _, err := s.Share(ctx, "inline://default/v?data=AQ%3D%3D", time.Minute); !errors.Is(err, stash.ErrUnsupported) {
		t.Errorf("inline share: %v, want ErrUnsupported", err)
	}
	if _, err := s.Share(ctx, st.String(), 8*24*time.Hour); err == nil {
		t.Error("share for 8 days accepted")
	}
}

// TestLinks serves kstash-style links (plain URLs, path /<bucket>/<name>.<md5>)
// from a local server standing in for S3.
func TestLinks(t *testing.T) {
	ctx := context.Background()
	good, _ := Marshal(Map{{"k", "v"}})
	bad, _ := Marshal(Map{{"k", "w"}})
	sum := md5Hex(good)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/stashes/ok." + sum, "/ok." + sum:
			w.Write(good)
		case "/stashes/bad." + sum:
			w.Write(bad)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	eng := mustEngine(t, trustLinks(t, srv.URL))
	s, err := New(eng)
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{
		srv.URL + "/stashes/ok." + sum + "?X-Amz-Signature=abc",
		srv.URL + "/ok." + sum,
	} {
		got, err := s.Retrieve(ctx, link)
		if err != nil {
			t.Fatalf("%s: %v", link, err)
		}
		if !reflect.DeepEqual(got.Value, Map{{"k", "v"}}) || got.Address.Digest != sum {
			t.Errorf("%s: %#v", link, got)
		}
	}
	if _, err := s.Retrieve(ctx, srv.URL+"/stashes/bad."+sum); !errors.Is(err, stash.ErrIntegrity) {
		t.Errorf("tampered link: %v, want ErrIntegrity", err)
	}
	if _, err := s.Retrieve(ctx, srv.URL+"/stashes/gone."+sum); !errors.Is(err, stash.ErrNotFound) {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
	_, err = s.Retrieve(ctx, srv.URL+"/stashes/ok."+sum+"?X-Amz-Signature=secret")
	if err != nil {
		t.Fatal(err)
	}
	// Untrusted: refused before any request.
	n := hits.Load()
	untrusting, _ := New(mustEngine(t))
	_, err = untrusting.Retrieve(ctx, srv.URL+"/stashes/ok."+sum+"?X-Amz-Signature=secret")
	if !errors.Is(err, stash.ErrForbidden) || hits.Load() != n {
		t.Errorf("untrusted origin: %v after %d requests, want ErrForbidden and none", err, hits.Load()-n)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the signature", err)
	}
}

// trustLinks is an engine option that fetches share links from origins.
func trustLinks(t testing.TB, origins ...string) stash.Option {
	t.Helper()
	f, err := links.NewFetcher(links.TrustOrigins(origins...))
	if err != nil {
		t.Fatal(err)
	}
	return stash.WithLinkFetcher(f)
}
