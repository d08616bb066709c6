package claimcheck_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
)

// located is memstash with s3stash's Locate, under a key prefix (the real
// S3 path is tested over MinIO in transports/ccsqs).
type located struct {
	*memstash.Store
	prefix string
}

func (l located) Locate(ns, key string) (string, string) { return ns, l.prefix + key }

func (located) Scheme() string { return "s3" }

func awsChecker(t *testing.T, opts ...claimcheck.Option) (*claimcheck.Checker, located) {
	t.Helper()
	st := located{Store: memstash.New(), prefix: "p/"}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace("bucket-a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	c, err := claimcheck.New(e, append([]claimcheck.Option{claimcheck.WithContract(claimcheck.ContractAWSPointer)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

func TestAWSPointerRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, st := awsChecker(t, claimcheck.WithMode(claimcheck.Always))
	payload := bytes.Repeat([]byte("0123456789"), 5000) // compressible: stored plain all the same
	h := claimcheck.MapHeaders{"k": "v"}
	body, addr, err := c.Offload(ctx, "orders", payload, h)
	if err != nil || addr == "" {
		t.Fatalf("Offload: %q %v", addr, err)
	}
	p, size, ok, err := claimcheck.ParseAWSPointer(body, h)
	if !ok || err != nil || size != int64(len(payload)) {
		t.Fatalf("ParseAWSPointer(%s): %+v %d %v %v", body, p, size, ok, err)
	}
	if p.Bucket != "bucket-a" || !strings.HasPrefix(p.Key, "p/orders.") {
		t.Fatalf("pointer %+v", p)
	}
	if !strings.HasPrefix(string(body), `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"bucket-a","s3Key":"p/orders.`) {
		t.Fatalf("body %s", body)
	}
	if _, ok := h[claimcheck.HeaderVersion]; ok {
		t.Error("the AWS contract set claimstash's header")
	}
	// The object is the payload itself, byte for byte.
	rc, _, err := st.Get(ctx, "bucket-a", strings.TrimPrefix(p.Key, "p/"))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(rc)
	rc.Close()
	if !bytes.Equal(raw.Bytes(), payload) {
		t.Fatalf("stored object is %d bytes, not the plain payload", raw.Len())
	}
	// Never twice.
	again, _, err := c.Offload(ctx, "orders", body, h)
	if err != nil || !bytes.Equal(again, body) {
		t.Fatalf("second Offload changed the message: %v", err)
	}
	out, raddr, err := c.Rehydrate(ctx, "orders", body, h)
	if err != nil || !bytes.Equal(out, payload) || raddr != "" {
		t.Fatalf("Rehydrate: %d bytes, %q, %v", len(out), raddr, err)
	}
	if _, ok := h[claimcheck.AttrExtendedPayloadSize]; ok || h["k"] != "v" {
		t.Fatalf("headers after rehydrate: %v", h)
	}
}

// Below the threshold nothing changes; the threshold is the extended
// clients' 262,144 bytes.
func TestAWSPointerThreshold(t *testing.T) {
	c, _ := awsChecker(t, claimcheck.WithMargin(0))
	small := make([]byte, claimcheck.DefaultThreshold-4)
	h := claimcheck.MapHeaders{"ab": "cd"} // 4 bytes: exactly at the threshold
	out, addr, err := c.Offload(context.Background(), "t", small, h)
	if err != nil || addr != "" || len(out) != len(small) {
		t.Fatalf("at the threshold: offloaded=%v err=%v", addr != "", err)
	}
	h["ab"] = "cde"
	if _, addr, err = c.Offload(context.Background(), "t", small, h); err != nil || addr == "" {
		t.Fatalf("one byte over: offloaded=%v err=%v", addr != "", err)
	}
}

// Pointers written by AWS's clients (random keys, no claimstash metadata,
// either size attribute) are read from the configured bucket and prefix
// only.
func TestAWSPointerForeign(t *testing.T) {
	ctx := context.Background()
	c, st := awsChecker(t)
	payload := []byte(strings.Repeat("x", 1000))
	if err := st.Put(ctx, "bucket-a", "0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d", bytes.NewReader(payload), int64(len(payload)), &driver.Attributes{Size: 1000, StoredSize: 1000}); err != nil {
		t.Fatal(err)
	}
	ptr := func(bucket, key string) []byte {
		return claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: bucket, Key: key})
	}
	for _, attr := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize} {
		h := claimcheck.MapHeaders{attr: "1000"}
		out, _, err := c.Rehydrate(ctx, "q", ptr("bucket-a", "p/0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d"), h)
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("%s: %d bytes, %v", attr, len(out), err)
		}
	}
	cases := []struct {
		name string
		body []byte
		size string
		want error
	}{
		{"other bucket", ptr("bucket-b", "p/0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d"), "1000", claimcheck.ErrNotAllowed},
		{"outside the prefix", ptr("bucket-a", "0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d"), "1000", claimcheck.ErrNotAllowed},
		{"missing", ptr("bucket-a", "p/nothing-here"), "1000", stash.ErrNotFound},
		{"size lies low", ptr("bucket-a", "p/0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d"), "999", stash.ErrIntegrity},
		{"size lies high", ptr("bucket-a", "p/0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d"), "1000000000", stash.ErrIntegrity},
		{"size over the limit", ptr("bucket-a", "p/0b9e8d1c-3a5f-4c1e-9d2b-7f6e5a4b3c2d"), "99999999999999", stash.ErrTooLarge},
		{"bad size", ptr("bucket-a", "p/x"), "-1", claimcheck.ErrMalformed},
		{"not JSON", []byte("hello"), "5", claimcheck.ErrMalformed},
		{"wrong class", []byte(`["java.lang.String",{"s3BucketName":"bucket-a","s3Key":"p/x"}]`), "5", claimcheck.ErrMalformed},
		{"extra field", []byte(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"bucket-a","s3Key":"p/x","z":1}]`), "5", claimcheck.ErrMalformed},
		{"bad bucket", ptr("B", "p/x"), "5", claimcheck.ErrMalformed},
		{"control in key", ptr("bucket-a", "p/\x00"), "5", claimcheck.ErrMalformed},
	}
	for _, tc := range cases {
		h := claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: tc.size}
		out, _, err := c.Rehydrate(ctx, "q", tc.body, h)
		if !errors.Is(err, tc.want) || out != nil {
			t.Errorf("%s: %d bytes, err %v; want %v", tc.name, len(out), err, tc.want)
		}
		if !claimcheck.IsPermanent(err) {
			t.Errorf("%s: %v is not permanent", tc.name, err)
		}
		if h[claimcheck.AttrExtendedPayloadSize] != tc.size {
			t.Errorf("%s: a failed rehydrate changed the headers", tc.name)
		}
	}
}

// A checker with the default contract leaves AWS pointers alone.
func TestAWSPointerNeedsTheContract(t *testing.T) {
	c := newMemChecker(t)
	body := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: "k"})
	out, _, err := c.Rehydrate(context.Background(), "q", body, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5"})
	if err != nil || !bytes.Equal(out, body) {
		t.Fatalf("default contract: %v", err)
	}
	// And the AWS contract refuses, when the checker is built, an engine
	// without an s3 backend that locates its objects: such a checker could
	// neither offload nor read one pointer, and every pointer it received
	// would be a permanent failure, discarded under DiscardAfter.
	for name, d := range map[string]driver.Driver{"no s3": memstash.New(), "s3 that cannot locate": unlocated{memstash.New()}} {
		e, err := stash.New(stash.WithBackend(d))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if _, err := claimcheck.New(e, claimcheck.WithContract(claimcheck.ContractAWSPointer)); !errors.Is(err, stash.ErrUnsupported) {
			t.Errorf("%s: New: %v, want stash.ErrUnsupported", name, err)
		}
	}
}

// unlocated is an s3 backend without Locate.
type unlocated struct{ *memstash.Store }

func (unlocated) Scheme() string { return "s3" }

func newMemChecker(t *testing.T) *claimcheck.Checker {
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	c, err := claimcheck.New(e)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func FuzzParseAWSPointer(f *testing.F) {
	f.Add([]byte(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b-1","s3Key":"k"}]`), "10")
	f.Add([]byte(`[]`), "x")
	f.Fuzz(func(t *testing.T, body []byte, size string) {
		p, n, ok, err := claimcheck.ParseAWSPointer(body, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: size})
		if !ok {
			t.Fatal("marked message read as unmarked")
		}
		if err != nil {
			if !errors.Is(err, claimcheck.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if n < 0 || p.Bucket == "" || p.Key == "" {
			t.Fatalf("accepted %+v %d", p, n)
		}
		// What parses re-marshals to something that parses the same.
		q, _, _, err := claimcheck.ParseAWSPointer(claimcheck.MarshalAWSPointer(p), claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "1"})
		if err != nil || q != p {
			t.Fatalf("round trip of %+v: %+v %v", p, q, err)
		}
	})
}

// The pointer object is read as the extended clients write it, and as
// Jackson (case-sensitive, failing on unknown properties) reads it: field
// names exactly, each once, both strings. encoding/json's own struct
// decoding matches names case-insensitively and keeps the last of repeated
// ones, so two readers could follow different objects from one message.
// Errors quote, and cut, what the message carried, and name no Go
// identifiers.
func TestAWSPointerStrictObject(t *testing.T) {
	const class = `["software.amazon.payloadoffloading.PayloadS3Pointer",`
	long := strings.Repeat("z", 5000)
	cases := map[string]string{
		"folded field name":    class + `{"s3bucketname":"bucket-a","s3Key":"p/x"}]`,
		"upper field name":     class + `{"s3BucketName":"bucket-a","S3KEY":"p/x"}]`,
		"repeated key":         class + `{"s3BucketName":"bucket-a","s3Key":"p/x","s3Key":"p/y"}]`,
		"repeated bucket":      class + `{"s3BucketName":"bucket-b","s3BucketName":"bucket-a","s3Key":"p/x"}]`,
		"folded repeat":        class + `{"s3BucketName":"bucket-b","S3BucketName":"bucket-a","s3Key":"p/x"}]`,
		"number key":           class + `{"s3BucketName":"bucket-a","s3Key":5}]`,
		"object bucket":        class + `{"s3BucketName":{"a":1},"s3Key":"p/x"}]`,
		"null key":             class + `{"s3BucketName":"bucket-a","s3Key":null}]`,
		"array":                class + `["bucket-a","p/x"]]`,
		"string":               class + `"bucket-a/p/x"]`,
		"long unknown field":   class + `{"s3BucketName":"bucket-a","s3Key":"p/x","` + long + `":1}]`,
		"long bad key type":    class + `{"s3BucketName":"bucket-a","s3Key":["` + long + `"]}]`,
		"deeply nested value":  class + `{"s3BucketName":"bucket-a","s3Key":` + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + `}]`,
		"missing key":          class + `{"s3BucketName":"bucket-a"}]`,
		"trailing object junk": class + `{"s3BucketName":"bucket-a","s3Key":"p/x"} 1]`,
	}
	for name, body := range cases {
		p, _, ok, err := claimcheck.ParseAWSPointer([]byte(body), claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5"})
		if !ok || !errors.Is(err, claimcheck.ErrMalformed) {
			t.Errorf("%s: read as %+v, %v; want ErrMalformed", name, p, err)
			continue
		}
		msg := err.Error()
		for _, goName := range []string{"AWSPointer", "Go ", "struct", "json:"} {
			if strings.Contains(msg, goName) {
				t.Errorf("%s: error %q names %q", name, msg, goName)
			}
		}
		if len(msg) > 600 {
			t.Errorf("%s: error of %d bytes", name, len(msg))
		}
	}
}

// Under the AWS contract, as under claimstash's, the per-message override
// never reaches the wire: not on a message the policy keeps, and not on
// one that is already claim-checked or already an AWS pointer (which is
// never offloaded twice).
func TestAWSPointerOverrideNeverSent(t *testing.T) {
	ctx := context.Background()
	c, _ := awsChecker(t)
	ptr := string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: "p/k"}))
	cases := []struct {
		name string
		body string
		h    claimcheck.MapHeaders
	}{
		{"kept", "small", claimcheck.MapHeaders{claimcheck.HeaderOffload: claimcheck.OffloadNever}},
		{"already a pointer", ptr, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5", claimcheck.HeaderOffload: claimcheck.OffloadAlways}},
		{"already a legacy pointer", ptr, claimcheck.MapHeaders{claimcheck.AttrLegacyPayloadSize: "5", claimcheck.HeaderOffload: claimcheck.OffloadNever}},
		{"already claim-checked", "mem://ns/x.0", claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "5", claimcheck.HeaderOffload: claimcheck.OffloadAlways}},
	}
	for _, tc := range cases {
		out, addr, err := c.Offload(ctx, "q", []byte(tc.body), tc.h)
		if err != nil || addr != "" || string(out) != tc.body {
			t.Errorf("%s: %q %q %v; want the message as it was", tc.name, out, addr, err)
		}
		if v, ok := tc.h[claimcheck.HeaderOffload]; ok {
			t.Errorf("%s: %s=%q would be sent", tc.name, claimcheck.HeaderOffload, v)
		}
	}
}

// The AWS contract reports to the observer as claimstash's does: every
// message (OpPass for one it keeps), Start before the stash is touched with
// the context it returns passed on, the headers, and the object's name as
// errors show it (quoted, for one that is not printable).
func TestAWSPointerObserver(t *testing.T) {
	ctx := context.Background()
	rec := &startRecorder{}
	var counters claimcheck.Counters
	var addrs []string
	c, _ := awsChecker(t, claimcheck.WithThreshold(4<<10), claimcheck.WithObserver(claimcheck.Observers(rec, &counters,
		claimcheck.ObserverFunc(func(_ context.Context, ev claimcheck.Event) { addrs = append(addrs, ev.Address) }))))
	h := claimcheck.MapHeaders{}
	if out, _, err := c.Offload(ctx, "t", []byte("small"), h); err != nil || string(out) != "small" {
		t.Fatalf("offload small: %q, %v", out, err)
	}
	h = claimcheck.MapHeaders{}
	ref, _, err := c.Offload(ctx, "t", payload(8<<10), h)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Rehydrate(ctx, "t", ref, h); err != nil {
		t.Fatal(err)
	}
	hostile := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: "p/\u202egnp.exe"})
	h = claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5"}
	if _, _, err := c.Rehydrate(ctx, "t", hostile, h); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("rehydrate of a missing object: %v", err)
	}
	want := []string{
		"observe pass t started= ok",
		"start offload t", "observe offload t started=offload ok",
		"start rehydrate t", "observe rehydrate t started=rehydrate ok",
		"start rehydrate t", "observe rehydrate t started=rehydrate err",
	}
	if got := strings.Join(rec.events, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if snap := counters.Snapshot(); snap.Passed != 1 || snap.Offloaded != 1 || snap.Rehydrated != 1 || snap.RehydrateFailures != 1 {
		t.Errorf("counters: %+v", snap)
	}
	if last := addrs[len(addrs)-1]; last != `"s3://bucket-a/p/\u202egnp.exe"` {
		t.Errorf("event address %s, want it quoted", last)
	}
}

// A pointer key with dot segments is refused before any request: S3
// itself reads it literally, but a proxy or an S3-compatible store that
// normalizes the path would read "p/../other-ns/k" outside the prefix the
// checker checked (with s3stash's WithBucket, another namespace's
// objects). No extended client writes such keys: theirs are UUIDs under an
// optional prefix.
func TestAWSPointerKeyTraversal(t *testing.T) {
	ctx := context.Background()
	c, st := awsChecker(t)
	payload := []byte("secret")
	for _, key := range []string{"p/../secret", "p/./x", "p/a/..", "p/..", "p/a\\..\\..\\secret", "p/.\\x"} {
		// Stored, so only the refusal can stop the read.
		if err := st.Put(ctx, "bucket-a", strings.TrimPrefix(key, "p/"), bytes.NewReader(payload), int64(len(payload)), &driver.Attributes{Size: 6, StoredSize: 6}); err != nil {
			t.Fatal(err)
		}
		body := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: key})
		out, _, err := c.Rehydrate(ctx, "q", body, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "6"})
		if !errors.Is(err, claimcheck.ErrMalformed) || out != nil {
			t.Errorf("key %q: %q, %v; want ErrMalformed", key, out, err)
		}
	}
	// Dots that are not a whole segment are an ordinary key.
	key := "p/a..b/.c/d."
	if err := st.Put(ctx, "bucket-a", "a..b/.c/d.", bytes.NewReader(payload), int64(len(payload)), &driver.Attributes{Size: 6, StoredSize: 6}); err != nil {
		t.Fatal(err)
	}
	body := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: key})
	if out, _, err := c.Rehydrate(ctx, "q", body, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "6"}); err != nil || string(out) != "secret" {
		t.Errorf("key %q: %q, %v", key, out, err)
	}
}

// A key that is not valid UTF-8 in the message (raw bytes, or an escaped
// lone surrogate) is malformed: encoding/json would read it as U+FFFD and
// go for another object than the one the message named (Jackson refuses
// the bytes).
func TestAWSPointerKeyNotUTF8(t *testing.T) {
	ctx := context.Background()
	c, st := awsChecker(t)
	payload := []byte("secret")
	if err := st.Put(ctx, "bucket-a", "\ufffd", bytes.NewReader(payload), int64(len(payload)), &driver.Attributes{Size: 6, StoredSize: 6}); err != nil {
		t.Fatal(err)
	}
	const class = `["software.amazon.payloadoffloading.PayloadS3Pointer",`
	for _, body := range []string{
		class + `{"s3BucketName":"bucket-a","s3Key":"p/` + "\xff" + `"}]`,
		class + `{"s3BucketName":"bucket-a","s3Key":"p/\ud800"}]`,
	} {
		out, _, err := c.Rehydrate(ctx, "q", []byte(body), claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "6"})
		if !errors.Is(err, claimcheck.ErrMalformed) || out != nil {
			t.Errorf("%q: %q, %v; want ErrMalformed", body, out, err)
		}
	}
}

// An AWS pointer declaring more than the engine's WithMaxSize is
// ErrTooLarge before anything is read, as a stash over it is: the limit is
// the engine's, not the package default.
func TestAWSPointerEngineMaxSize(t *testing.T) {
	ctx := context.Background()
	st := located{Store: memstash.New(), prefix: "p/"}
	e, err := stash.New(stash.WithBackend(st), stash.WithNamespace("bucket-a"), stash.WithMaxSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := claimcheck.New(e, claimcheck.WithContract(claimcheck.ContractAWSPointer))
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 1001))
	if err := st.Put(ctx, "bucket-a", "p/big", bytes.NewReader(payload), int64(len(payload)), &driver.Attributes{Size: 1001, StoredSize: 1001}); err != nil {
		t.Fatal(err)
	}
	body := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: "p/big"})
	out, _, err := c.Rehydrate(ctx, "q", body, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "1001"})
	if !errors.Is(err, stash.ErrTooLarge) || out != nil {
		t.Fatalf("a pointer of 1001 bytes under WithMaxSize(1000): %d bytes, %v; want ErrTooLarge", len(out), err)
	}
}

// Under the AWS contract a message already marked is kept as it is, as
// under claimstash's, but its mark is checked first: one that no consumer
// could read (a pointer that is not one, a message with both marks) is
// ErrMalformed and is not sent, its headers unchanged.
func TestAWSPointerForwardedMarkChecked(t *testing.T) {
	ctx := context.Background()
	c, _ := awsChecker(t)
	ptr := string(claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: "p/k"}))
	for name, tc := range map[string]struct {
		body string
		h    claimcheck.MapHeaders
	}{
		"not a pointer":   {"not json", claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5"}},
		"size not a size": {ptr, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "five"}},
		"both marks":      {ptr, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "5", claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "5"}},
	} {
		before := maps.Clone(tc.h)
		out, addr, err := c.Offload(ctx, "q", []byte(tc.body), tc.h)
		if !errors.Is(err, claimcheck.ErrMalformed) || out != nil || addr != "" {
			t.Errorf("%s: %q %q %v; want ErrMalformed and nothing to send", name, out, addr, err)
		}
		if !maps.Equal(tc.h, before) {
			t.Errorf("%s: the headers changed: %v", name, tc.h)
		}
	}
}
