package otelstash_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/otelstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

// A share link's query is its signature: no span attribute, event or
// status of the engine's or the checker's spans carries it. A link shows
// as scheme://host/path?… .
func TestTelemetryKeepsLinkSignaturesOut(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	defer srv.Close()
	signer, linkOpts, err := links.EngineOptions([]links.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}, srv.URL+"/share/")
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(append([]stash.Option{stash.WithBackend(memstash.New()), stash.WithInlineMax(-1), tm.inst.EngineOption()}, linkOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h = links.NewHandler(e, signer)
	data := random(4 << 10)
	s, err := e.Create(ctx, "doc", data)
	if err != nil {
		t.Fatal(err)
	}
	link, err := e.Share(ctx, s.Address.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(link, "sig=", "sig=A", 1)
	if _, err := e.Retrieve(ctx, link); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Retrieve(ctx, tampered); err == nil {
		t.Fatal("a tampered link was read")
	}
	c, err := claimcheck.New(e, tm.inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{link, tampered} {
		hd := claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: strconv.Itoa(len(data))}
		_, _, _ = c.Rehydrate(ctx, "orders", []byte(l), hd)
	}

	_, query, _ := strings.Cut(link, "?")
	want := strings.SplitN(link, "?", 2)[0] + "?…"
	shown := 0
	for _, sp := range tm.spans.Ended() {
		check := func(what, v string) {
			t.Helper()
			if strings.Contains(v, query) || strings.Contains(v, "sig=") {
				t.Errorf("span %q: %s carries the link's signature: %s", sp.Name(), what, v)
			}
		}
		for _, kv := range sp.Attributes() {
			v := kv.Value.String()
			check(string(kv.Key), v)
			if kv.Key == otelstash.KeyAddress && strings.HasPrefix(v, "http") {
				shown++
				if v != want {
					t.Errorf("span %q: %s = %q, want %q", sp.Name(), kv.Key, v, want)
				}
			}
		}
		for _, ev := range sp.Events() {
			for _, kv := range ev.Attributes {
				check("event "+ev.Name+" "+string(kv.Key), kv.Value.String())
			}
		}
		check("status", sp.Status().Description)
	}
	if shown == 0 {
		t.Errorf("no span shows the link (%d spans)", len(tm.spans.Ended()))
	}
}

// An inline address carries its payload (base64, in data=): no span
// attribute, event or status shows it. Such an address shows as
// inline://namespace/name?… .
func TestTelemetryKeepsInlinePayloadsOut(t *testing.T) {
	tm := newTelemetry(t)
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()), tm.inst.EngineOption())
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("card=4111111111111111;cvv=123;")
	s, err := e.Create(ctx, "tiny", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Address.IsInline() {
		t.Fatalf("%s: want an inline stash", s)
	}
	addr := s.Address.String()
	_, data, _ := strings.Cut(addr, "?data=")
	if _, err := e.Retrieve(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Stat(ctx, addr); err != nil {
		t.Fatal(err)
	}
	// A malformed one fails: its error names the address too.
	bad := addr + "%21"
	if _, err := e.Retrieve(ctx, bad); err == nil {
		t.Fatal("a malformed inline address was read")
	}
	c, err := claimcheck.New(e, tm.inst.CheckerOption())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{addr, bad} {
		hd := claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: strconv.Itoa(len(secret))}
		_, _, _ = c.Rehydrate(ctx, "orders", []byte(a), hd)
	}

	want := "inline://default/tiny?…"
	shown := 0
	for _, sp := range tm.spans.Ended() {
		check := func(what, v string) {
			t.Helper()
			if strings.Contains(v, data[:16]) {
				t.Errorf("span %q: %s carries the inline payload: %s", sp.Name(), what, v)
			}
		}
		for _, kv := range sp.Attributes() {
			v := kv.Value.String()
			check(string(kv.Key), v)
			if kv.Key == otelstash.KeyAddress {
				shown++
				if v != want {
					t.Errorf("span %q: %s = %q, want %q", sp.Name(), kv.Key, v, want)
				}
			}
		}
		for _, ev := range sp.Events() {
			for _, kv := range ev.Attributes {
				check("event "+ev.Name+" "+string(kv.Key), kv.Value.String())
			}
		}
		check("status", sp.Status().Description)
	}
	if shown == 0 {
		t.Errorf("no span shows the address (%d spans)", len(tm.spans.Ended()))
	}
}
