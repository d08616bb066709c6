package claimchecktest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
)

// forged returns crafted claim-checked messages that no consumer may hand
// to its handler: forged, truncated or unknown-version references, lying
// sizes, addresses outside the checker's store, hostile bodies. real is
// the address of a stash of realSize bytes in the checker's store.
func (s *suite) forged(c *claimcheck.Checker, real string, realSize int) []Message {
	scheme := c.Engine().Schemes()[0]
	ns := c.Engine().Namespace()
	digest := real[strings.LastIndexByte(real, '.')+1:]
	size := strconv.Itoa(realSize)
	v1 := claimcheck.ContractVersion
	msg := func(id, body, version, size string) Message {
		h := map[string]string{"id": id, claimcheck.HeaderVersion: version}
		if size != "" {
			h[claimcheck.HeaderSize] = size
		}
		return Message{Body: []byte(body), Headers: h}
	}
	msgs := []Message{
		msg("version-2", real, "2", size),
		msg("version-huge", real, strings.Repeat("1", 16<<10), size),
		msg("size-missing", real, v1, ""),
		msg("size-negative", real, v1, "-1"),
		msg("size-not-a-number", real, v1, "ten"),
		msg("size-overflow", real, v1, "99999999999999999999"),
		msg("size-lies", real, v1, strconv.Itoa(realSize+1)),
		// The right number, spelt as no claimstash producer writes it.
		msg("size-plus-sign", real, v1, "+"+size),
		msg("size-leading-zero", real, v1, "0"+size),
		msg("size-huge", real, v1, strings.Repeat("9", 16<<10)),
		msg("body-truncated", real[:len(real)-1], v1, size),
		msg("body-not-an-address", "hello", v1, size),
		msg("body-traversal", scheme+"://"+ns+"/../../etc/passwd."+digest, v1, size),
		msg("body-encoded-traversal", scheme+"://"+ns+"/%2e%2e/x."+digest, v1, size),
		msg("body-other-namespace", scheme+"://other-"+ns+"/x."+digest, v1, size),
		msg("body-unknown-scheme", "gopher://"+ns+"/x."+digest, v1, size),
		msg("body-wrong-digest", scheme+"://"+ns+"/x."+strings.Repeat("0", 64), v1, size),
		msg("body-untrusted-link", "https://evil.example/"+scheme+"/"+ns+"/x."+digest, v1, size),
		msg("body-inline-size-lies", "inline://"+ns+"/x?data=QUFB", v1, "4"),
		msg("body-huge", strings.Repeat("a", 64<<10), v1, size),
	}
	if !s.f.TextBodies {
		msgs = append(msgs,
			msg("body-binary", "\xff\xfe\x00\x1b[2J", v1, size),
			msg("body-empty", "", v1, size))
	}
	return msgs
}

// testForgedReferences publishes forged references raw, then a plain
// message. None of the forged ones reaches the handler; each reaches the
// checker's failure handler with a permanent, typed error (so that it is
// settled instead of redelivered for ever), and the stream goes on.
func (s *suite) testForgedReferences(t *testing.T) {
	var mu sync.Mutex
	routed := map[string]error{}
	h, c, ctx := s.setup(t, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
		id, _ := f.Headers.Get("id")
		mu.Lock()
		defer mu.Unlock()
		routed[id] = f.Err
		return nil
	}))
	payload := strings.Repeat("the real payload ", 100)
	st, err := c.Engine().Create(ctx, "real", []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	tampered := tamperedStash(t, ctx, c, []byte(payload))
	tp := topic(t)
	ch, err := h.Subscribe(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	forged := s.forged(c, st.String(), len(payload))
	if tampered != "" {
		forged = append(forged, Message{Body: []byte(tampered), Headers: map[string]string{
			"id": "stash-tampered", claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: strconv.Itoa(len(payload)),
		}})
	}
	if err := h.PublishRaw(ctx, tp, forged...); err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(ctx, tp, Message{Body: []byte("after"), Headers: map[string]string{"id": "after"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(s.f.Timeout)
	gotAfter := false
	for {
		mu.Lock()
		n := len(routed)
		mu.Unlock()
		if gotAfter && n >= len(forged) {
			break
		}
		select {
		case m := <-ch:
			if id := m.Headers["id"]; id != "after" {
				t.Fatalf("forged reference %q reached the handler as a payload of %d bytes", id, len(m.Body))
			}
			gotAfter = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("after %s: the plain message arrived: %v; %d of %d forged references reported: %v",
				s.f.Timeout, gotAfter, len(routed), len(forged), routed)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range forged {
		id := m.Headers["id"]
		err, ok := routed[id]
		switch {
		case !ok:
			t.Errorf("forged reference %q was not reported", id)
		case err == nil:
			t.Errorf("forged reference %q was reported without an error", id)
		case !claimcheck.IsPermanent(err):
			t.Errorf("forged reference %q: %v is not permanent: it would be redelivered for ever", id, err)
		case len(err.Error()) > 2048:
			t.Errorf("forged reference %q: error message of %d bytes", id, len(err.Error()))
		}
		var ce *claimcheck.Error
		if err != nil && !errors.As(err, &ce) {
			t.Errorf("forged reference %q: %v is not a *claimcheck.Error", id, err)
		}
	}
	select {
	case m := <-ch:
		t.Fatalf("forged reference %q reached the handler", m.Headers["id"])
	case <-time.After(200 * time.Millisecond):
	}
}

// tamperedStash stores payload under another name and replaces what the
// backend holds with its stored bytes, one flipped, through the driver: a
// reference to it is genuine, its stash is not. It returns "" when the
// backend refuses the flipped bytes (S3 checks them against the digest
// s3stash sends as a checksum).
func tamperedStash(t *testing.T, ctx context.Context, c *claimcheck.Checker, payload []byte) string {
	t.Helper()
	e := c.Engine()
	st, err := e.Create(ctx, "tampered", payload, stash.NoInline())
	if err != nil {
		t.Fatal(err)
	}
	d, ok := e.Backend(st.Address.Scheme)
	if !ok {
		t.Fatalf("no backend for %s", st.Address.Scheme)
	}
	ns, key := st.Address.Namespace, st.Address.Key()
	rc, attrs, err := d.Get(ctx, ns, key)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(stored) == 0 {
		t.Fatalf("reading the stored bytes back: %d bytes, %v", len(stored), err)
	}
	stored[len(stored)/2] ^= 0x01
	if err := d.Delete(ctx, ns, key); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, ns, key, bytes.NewReader(stored), int64(len(stored)), attrs); err != nil {
		t.Logf("the backend refused the tampered stash (%v): no reference to one is sent", err)
		return ""
	}
	return st.String()
}
