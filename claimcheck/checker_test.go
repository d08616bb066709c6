package claimcheck_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

func newEngine(t *testing.T, d driver.Driver, opts ...stash.Option) *stash.Engine {
	t.Helper()
	e, err := stash.New(append([]stash.Option{stash.WithBackend(d)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newChecker(t *testing.T, e *stash.Engine, opts ...claimcheck.Option) *claimcheck.Checker {
	t.Helper()
	c, err := claimcheck.New(e, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	return b
}

func TestPolicy(t *testing.T) {
	const threshold, margin = 100, 10
	tests := []struct {
		name    string
		mode    claimcheck.Mode
		body    int
		text    string // the body, when set (a reference forwarded)
		headers map[string]string
		want    bool
		wantErr error
	}{
		{name: "under", body: 80, want: false},
		{name: "at threshold is not over", body: threshold - margin, want: false},
		{name: "margin counts", body: threshold - margin + 1, want: true},
		{name: "headers count", body: 80, headers: map[string]string{"k": "0123456789"}, want: true}, // 80+11+10
		{name: "headers under", body: 78, headers: map[string]string{"k": "0123456789"}, want: false},
		{name: "always", mode: claimcheck.Always, body: 1, want: true},
		{name: "always empty body", mode: claimcheck.Always, body: 0, want: true},
		{name: "never", mode: claimcheck.Never, body: 10 << 10, want: false},
		{name: "override always", body: 1, headers: map[string]string{claimcheck.HeaderOffload: claimcheck.OffloadAlways}, want: true},
		{name: "override never", body: 10 << 10, headers: map[string]string{claimcheck.HeaderOffload: claimcheck.OffloadNever}, want: false},
		{name: "override beats mode never", mode: claimcheck.Never, body: 1, headers: map[string]string{claimcheck.HeaderOffload: claimcheck.OffloadAlways}, want: true},
		{name: "override beats mode always", mode: claimcheck.Always, body: 1, headers: map[string]string{claimcheck.HeaderOffload: claimcheck.OffloadNever}, want: false},
		{name: "bad override", body: 1, headers: map[string]string{claimcheck.HeaderOffload: "sometimes"}, wantErr: claimcheck.ErrBadOverride},
		{name: "never twice", mode: claimcheck.Always, text: "mem://default/x.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", headers: map[string]string{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10240"}, want: false},
		{name: "never twice, override stripped", text: "mem://default/x.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", headers: map[string]string{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10240", claimcheck.HeaderOffload: claimcheck.OffloadAlways}, want: false},
		{name: "never twice, a later version forwarded", text: "whatever version 2 writes", headers: map[string]string{claimcheck.HeaderVersion: "2"}, want: false},
		// A forwarded mark that no consumer can read is refused, not sent.
		{name: "marked, body no address", mode: claimcheck.Always, body: 10 << 10, headers: map[string]string{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10240"}, wantErr: claimcheck.ErrMalformed},
		{name: "marked, size missing", text: "mem://default/x.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", headers: map[string]string{claimcheck.HeaderVersion: "1"}, wantErr: claimcheck.ErrMalformed},
		{name: "marked, size lies in its spelling", text: "mem://default/x.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", headers: map[string]string{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "+10"}, wantErr: claimcheck.ErrMalformed},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := &claimcheck.Counters{}
			c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithObserver(counts),
				claimcheck.WithThreshold(threshold), claimcheck.WithMargin(margin), claimcheck.WithMode(tt.mode))
			body := payload(tt.body)
			if tt.text != "" {
				body = []byte(tt.text)
			}
			h := claimcheck.MapHeaders(maps.Clone(tt.headers))
			if h == nil {
				h = claimcheck.MapHeaders{}
			}
			before := maps.Clone(h)
			// The fast path agrees with Offload, writes nothing, and is
			// counted as a pass exactly when it takes the message.
			_, override := h[claimcheck.HeaderOffload]
			wantPass := !tt.want && tt.wantErr == nil && !override
			if got := c.Pass(ctx, "orders", body, h); got != wantPass {
				t.Errorf("Pass = %v, want %v", got, wantPass)
			}
			if !maps.Equal(h, before) {
				t.Fatalf("Pass changed the headers: %v", h)
			}
			if n := counts.Snapshot().Passed; n != map[bool]int64{true: 1}[wantPass] {
				t.Errorf("Pass reported %d passes", n)
			}
			out, addr, err := c.Offload(ctx, "orders", body, h)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if out != nil || addr != "" || !maps.Equal(h, before) {
					t.Fatalf("failed offload changed something: out=%d bytes addr=%q headers=%v", len(out), addr, h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := h[claimcheck.HeaderOffload]; ok {
				t.Errorf("%s not stripped: %v", claimcheck.HeaderOffload, h)
			}
			if got := addr != ""; got != tt.want {
				t.Fatalf("offloaded = %v, want %v", got, tt.want)
			}
			if !tt.want {
				// Byte-for-byte untouched, headers too (less the override).
				delete(before, claimcheck.HeaderOffload)
				if !bytes.Equal(out, body) || !maps.Equal(h, before) {
					t.Fatalf("message changed: headers %v, want %v", h, before)
				}
				return
			}
			if string(out) != addr || h[claimcheck.HeaderVersion] != claimcheck.ContractVersion || h[claimcheck.HeaderSize] != strconv.Itoa(len(body)) {
				t.Fatalf("contract not applied: body %q headers %v", out, h)
			}
			for k, v := range tt.headers {
				if k != claimcheck.HeaderOffload && h[k] != v {
					t.Errorf("producer header %s = %q, want %q", k, h[k], v)
				}
			}
			// Never twice: offloading the result again changes nothing.
			h2 := maps.Clone(h)
			out2, addr2, err := c.Offload(ctx, "orders", out, h2)
			if err != nil || addr2 != "" || !bytes.Equal(out2, out) || !maps.Equal(h2, h) {
				t.Fatalf("second offload: addr %q err %v", addr2, err)
			}
			// And it comes back.
			got, raddr, err := c.Rehydrate(ctx, "orders", out, h)
			if err != nil || raddr != addr || !bytes.Equal(got, body) {
				t.Fatalf("rehydrate: %v", err)
			}
			if claimcheck.IsClaimChecked(h) {
				t.Errorf("contract headers left after rehydrate: %v", h)
			}
		})
	}
}

func TestUnderThresholdUntouched(t *testing.T) {
	c := newChecker(t, newEngine(t, memstash.New()))
	body := payload(1000)
	h := claimcheck.MapHeaders{"traceparent": "00-abc-def-01", "Content-Type": "application/json", "empty": ""}
	before := maps.Clone(h)
	out, addr, err := c.Offload(context.Background(), "t", body, h)
	if err != nil || addr != "" {
		t.Fatalf("addr %q err %v", addr, err)
	}
	if &out[0] != &body[0] || len(out) != len(body) {
		t.Error("body was copied or changed")
	}
	if !maps.Equal(h, before) {
		t.Errorf("headers %v, want %v", h, before)
	}
	// Rehydrate of an ordinary message is a no-op too.
	got, addr, err := c.Rehydrate(context.Background(), "t", body, h)
	if err != nil || addr != "" || &got[0] != &body[0] || !maps.Equal(h, before) {
		t.Fatalf("rehydrate changed an ordinary message: addr %q err %v", addr, err)
	}
}

// failingPut fails every Put, as a backend that is down.
type failingPut struct {
	driver.Driver
	err error
}

func (f failingPut) Put(context.Context, string, string, io.Reader, int64, *driver.Attributes) error {
	return f.err
}

func TestOffloadThenPublish(t *testing.T) {
	boom := errors.New("disk on fire")
	var counters claimcheck.Counters
	c := newChecker(t, newEngine(t, failingPut{memstash.New(), boom}), claimcheck.WithMode(claimcheck.Always), claimcheck.WithObserver(&counters))
	h := claimcheck.MapHeaders{"a": "b"}
	out, addr, err := c.Offload(context.Background(), "t", payload(10<<10), h)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the backend's", err)
	}
	var ce *claimcheck.Error
	if !errors.As(err, &ce) || ce.Op != "offload" || ce.Topic != "t" {
		t.Fatalf("err = %#v, want *claimcheck.Error for offload on t", err)
	}
	if out != nil || addr != "" {
		t.Fatalf("an address went out although the stash was not written: %q", addr)
	}
	if !maps.Equal(h, claimcheck.MapHeaders{"a": "b"}) {
		t.Fatalf("headers changed on failure: %v", h)
	}
	if s := counters.Snapshot(); s.OffloadFailures != 1 || s.Offloaded != 0 {
		t.Fatalf("counters %+v", s)
	}
}

// offloaded returns a claim-checked message made by c.
func offloaded(t *testing.T, c *claimcheck.Checker, body []byte) ([]byte, claimcheck.MapHeaders, string) {
	t.Helper()
	h := claimcheck.MapHeaders{"keep": "me"}
	out, addr, err := c.Offload(context.Background(), "orders", body, h)
	if err != nil || addr == "" {
		t.Fatalf("offload: addr %q err %v", addr, err)
	}
	return out, h, addr
}

func TestRehydrateErrors(t *testing.T) {
	ctx := context.Background()
	clk := stashtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := memstash.New()
	trusted, err := links.NewFetcher(links.TrustOrigins("https://stash.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, store, stash.WithClock(clk.Now), stash.WithLinkFetcher(trusted))
	c := newChecker(t, e, claimcheck.WithMode(claimcheck.Always))
	digest := "0000000000000000000000000000000000000000000000000000000000000000"

	tests := []struct {
		name    string
		msg     func(t *testing.T) ([]byte, claimcheck.MapHeaders)
		wantErr []error
	}{
		{name: "missing", wantErr: []error{stash.ErrNotFound}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, addr := offloaded(t, c, payload(3000))
			if err := e.Delete(ctx, addr); err != nil {
				t.Fatal(err)
			}
			return out, h
		}},
		{name: "never written", wantErr: []error{stash.ErrNotFound}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("mem://default/orders." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "expired", wantErr: []error{stash.ErrExpired, stash.ErrNotFound}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			c := newChecker(t, e, claimcheck.WithMode(claimcheck.Always), claimcheck.WithStashOptions(stash.TTL(time.Minute)))
			out, h, _ := offloaded(t, c, payload(3001))
			clk.Advance(2 * time.Minute)
			return out, h
		}},
		{name: "tampered", wantErr: []error{stash.ErrIntegrity}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, addr := offloaded(t, c, payload(3002))
			a, err := stash.ParseAddress(addr)
			if err != nil || !store.Corrupt(a.Namespace, a.Key(), 100) {
				t.Fatalf("corrupt %s: %v", addr, err)
			}
			return out, h
		}},
		{name: "size header lies", wantErr: []error{stash.ErrIntegrity}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, _ := offloaded(t, c, payload(3003))
			h[claimcheck.HeaderSize] = "3004"
			return out, h
		}},
		{name: "other namespace", wantErr: []error{claimcheck.ErrNotAllowed}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("mem://othertenant/orders." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "other scheme", wantErr: []error{claimcheck.ErrNotAllowed}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("file://default/orders." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "untrusted host", wantErr: []error{claimcheck.ErrNotAllowed}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("https://evil.example.com/mem/default/orders." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "plain http to trusted host", wantErr: []error{claimcheck.ErrNotAllowed}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("http://stash.example.com/mem/default/orders." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "path traversal", wantErr: []error{stash.ErrInvalidAddress}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("mem://default/../etc/passwd." + digest), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "bad version", wantErr: []error{claimcheck.ErrUnsupportedVersion}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, _ := offloaded(t, c, payload(3005))
			h[claimcheck.HeaderVersion] = "2"
			return out, h
		}},
		{name: "malformed size", wantErr: []error{claimcheck.ErrMalformed}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, _ := offloaded(t, c, payload(3006))
			h[claimcheck.HeaderSize] = "12k"
			return out, h
		}},
		{name: "negative size", wantErr: []error{claimcheck.ErrMalformed}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, _ := offloaded(t, c, payload(3007))
			h[claimcheck.HeaderSize] = "-1"
			return out, h
		}},
		{name: "missing size", wantErr: []error{claimcheck.ErrMalformed}, msg: func(t *testing.T) ([]byte, claimcheck.MapHeaders) {
			out, h, _ := offloaded(t, c, payload(3008))
			delete(h, claimcheck.HeaderSize)
			return out, h
		}},
		{name: "empty body", wantErr: []error{claimcheck.ErrMalformed}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return nil, claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "body not an address", wantErr: []error{stash.ErrInvalidAddress}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("order-42"), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
		{name: "body with spaces", wantErr: []error{claimcheck.ErrMalformed}, msg: func(*testing.T) ([]byte, claimcheck.MapHeaders) {
			return []byte("{\"order\": 42}"), claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var counters claimcheck.Counters
			c := newChecker(t, e, claimcheck.WithObserver(&counters))
			in, h := tt.msg(t)
			before := maps.Clone(h)
			out, addr, err := c.Rehydrate(ctx, "orders", in, h)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
			var ce *claimcheck.Error
			if !errors.As(err, &ce) || ce.Op != "rehydrate" || ce.Topic != "orders" {
				t.Fatalf("err = %#v, want *claimcheck.Error", err)
			}
			if ce.Address != string(in) || addr != string(in) {
				t.Errorf("error carries address %q (returned %q), want %q", ce.Address, addr, in)
			}
			if out != nil {
				t.Errorf("a failed rehydrate returned %d bytes", len(out))
			}
			if !maps.Equal(h, before) {
				t.Errorf("headers changed on failure: %v, want %v", h, before)
			}
			if s := counters.Snapshot(); s.RehydrateFailures != 1 || s.Rehydrated != 0 {
				t.Errorf("counters %+v, want one failure", s)
			}
		})
	}
}

func TestDeleteAfterAck(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, memstash.New())

	c := newChecker(t, e, claimcheck.WithMode(claimcheck.Always))
	if c.DeletesAfterAck() {
		t.Fatal("DeleteAfterAck is on by default")
	}
	_, _, addr := offloaded(t, c, payload(2000))
	if err := c.Acked(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Stat(ctx, addr); err != nil {
		t.Fatalf("stash gone after Acked without DeleteAfterAck: %v", err)
	}

	var counters claimcheck.Counters
	c = newChecker(t, e, claimcheck.WithMode(claimcheck.Always), claimcheck.DeleteAfterAck(), claimcheck.WithObserver(&counters))
	if err := c.Acked(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Stat(ctx, addr); !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("stat after delete: %v, want ErrNotFound", err)
	}
	if err := c.Acked(ctx, addr); err != nil {
		t.Fatalf("second Acked: %v (a stash already gone is not an error)", err)
	}
	if s := counters.Snapshot(); s.Deleted != 2 || s.DeleteFailures != 0 {
		t.Fatalf("counters %+v", s)
	}
}

// TestReferenceWithoutClaimstash reads a claim-checked message the way a
// consumer without this library would: a header and a body.
func TestReferenceWithoutClaimstash(t *testing.T) {
	c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMode(claimcheck.Always))
	body := payload(4096)
	out, h, addr := offloaded(t, c, body)

	// What crossed the wire, as plain strings.
	wire := map[string]string(h)
	if wire["claimstash-version"] != "1" || wire["claimstash-size"] != "4096" || string(out) != addr {
		t.Fatalf("wire form: body %q headers %v", out, wire)
	}
	gotAddr, size, ok, err := claimcheck.Reference(out, claimcheck.MapHeaders(wire))
	if err != nil || !ok || gotAddr != addr || size != 4096 {
		t.Fatalf("Reference = %q %d %v %v", gotAddr, size, ok, err)
	}
	a, err := stash.ParseAddress(gotAddr)
	if err != nil || a.Scheme != memstash.Scheme || a.Namespace != "default" || a.Name != "orders" {
		t.Fatalf("address %q: %+v %v", gotAddr, a, err)
	}
	// Reading it needs nothing from the message but the address.
	s, err := c.Engine().Retrieve(context.Background(), gotAddr)
	if err != nil || !bytes.Equal(s.Data, body) {
		t.Fatalf("retrieve by address alone: %v", err)
	}
	if _, _, ok, _ := claimcheck.Reference([]byte("hello"), claimcheck.MapHeaders{"a": "b"}); ok {
		t.Error("an ordinary message reads as claim-checked")
	}
}

func TestRehydrateFailurePolicy(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, memstash.New())
	missing := []byte("mem://default/orders.0000000000000000000000000000000000000000000000000000000000000000")
	h := claimcheck.MapHeaders{claimcheck.HeaderVersion: "1", claimcheck.HeaderSize: "10"}

	c := newChecker(t, e)
	_, _, err := c.Rehydrate(ctx, "orders", missing, h)
	if err == nil {
		t.Fatal("missing stash rehydrated")
	}
	if d, got := c.Decide(ctx, claimcheck.Failure{Topic: "orders", Body: missing, Headers: h, Err: err}); d != claimcheck.Redeliver || got != err {
		t.Fatalf("default policy = %v, %v; want Redeliver and the error itself", d, got)
	}

	var routed []claimcheck.Failure
	c = newChecker(t, e, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
		if errors.Is(f.Err, stash.ErrNotFound) {
			routed = append(routed, f)
			return nil
		}
		return f.Err
	}))
	if d, got := c.Decide(ctx, claimcheck.Failure{Topic: "orders", Body: missing, Headers: h, Err: err}); d != claimcheck.Handled || got != nil {
		t.Fatalf("handled failure = %v, %v; want Handled and nil", d, got)
	}
	other := &claimcheck.Error{Op: "rehydrate", Err: claimcheck.ErrNotAllowed}
	if d, got := c.Decide(ctx, claimcheck.Failure{Err: other}); d != claimcheck.Redeliver || got != other {
		t.Fatalf("unhandled failure = %v, %v; want Redeliver and it back", d, got)
	}
	if len(routed) != 1 || string(routed[0].Body) != string(missing) || routed[0].Headers == nil {
		t.Fatalf("routed %+v", routed)
	}

	// DiscardAfter gives up on permanent failures, after the handler had
	// its chance, counting deliveries where the transport does.
	c = newChecker(t, e, claimcheck.DiscardAfter(3))
	for _, tc := range []struct {
		deliveries int
		err        error
		want       claimcheck.Decision
	}{
		{1, err, claimcheck.Redeliver},
		{3, err, claimcheck.Discard},
		{0, err, claimcheck.Redeliver}, // uncounted: never, for more than 1
		{5, context.Canceled, claimcheck.Redeliver},
	} {
		if d, got := c.Decide(ctx, claimcheck.Failure{Err: tc.err, Deliveries: tc.deliveries}); d != tc.want || got != tc.err {
			t.Errorf("DiscardAfter(3), %d deliveries, %v: %v, %v; want %v", tc.deliveries, tc.err, d, got, tc.want)
		}
	}
	c = newChecker(t, e, claimcheck.DiscardAfter(1))
	if d, _ := c.Decide(ctx, claimcheck.Failure{Err: err}); d != claimcheck.Discard {
		t.Errorf("DiscardAfter(1), uncounted: %v, want Discard", d)
	}
	c = newChecker(t, e, claimcheck.DiscardAfter(1), claimcheck.OnRehydrateFailure(func(context.Context, claimcheck.Failure) error { return nil }))
	if d, _ := c.Decide(ctx, claimcheck.Failure{Err: err}); d != claimcheck.Handled {
		t.Errorf("DiscardAfter with a handler that takes it: %v, want Handled", d)
	}

	// A message in a later version of the contract (a producer upgraded
	// before its consumers) is not discarded: an upgraded consumer reads
	// it. A version that is no number is.
	for _, tc := range []struct {
		version string
		want    claimcheck.Decision
	}{{"2", claimcheck.Redeliver}, {"10", claimcheck.Redeliver}, {"0", claimcheck.Discard}, {"02", claimcheck.Discard}, {"x", claimcheck.Discard}, {"", claimcheck.Discard}} {
		vh := claimcheck.MapHeaders{claimcheck.HeaderVersion: tc.version, claimcheck.HeaderSize: "5"}
		_, _, rerr := c.Rehydrate(ctx, "orders", missing, vh)
		if !errors.Is(rerr, claimcheck.ErrUnsupportedVersion) || !claimcheck.IsPermanent(rerr) {
			t.Fatalf("version %q: %v, want a permanent ErrUnsupportedVersion", tc.version, rerr)
		}
		for _, dc := range []*claimcheck.Checker{newChecker(t, e, claimcheck.DiscardAfter(1)), newChecker(t, e, claimcheck.DiscardAfter(3))} {
			if d, _ := dc.Decide(ctx, claimcheck.Failure{Err: rerr, Deliveries: 7}); d != tc.want {
				t.Errorf("DiscardAfter, version %q: %v, want %v", tc.version, d, tc.want)
			}
		}
	}
	var seen int
	c = newChecker(t, e, claimcheck.DiscardAfter(1), claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
		seen++
		return f.Err
	}))
	_, _, rerr := c.Rehydrate(ctx, "orders", missing, claimcheck.MapHeaders{claimcheck.HeaderVersion: "2", claimcheck.HeaderSize: "5"})
	if d, _ := c.Decide(ctx, claimcheck.Failure{Err: rerr}); d != claimcheck.Redeliver || seen != 1 {
		t.Errorf("a newer version with a handler that leaves it: %v, handler called %d times; want Redeliver, once", d, seen)
	}
}

// A catch-all failure handler (a poison topic, say) must never see a
// transient failure: a message whose store is down or whose context was
// cancelled is nacked for redelivery, not diverted.
func TestRehydrateFailureTransientIsNacked(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, memstash.New())
	producer := newChecker(t, e, claimcheck.WithMode(claimcheck.Always))
	h := claimcheck.MapHeaders{}
	body, _, err := producer.Offload(ctx, "orders", []byte("payload that is there"), h)
	if err != nil {
		t.Fatal(err)
	}
	var routed int
	c := newChecker(t, e, claimcheck.OnRehydrateFailure(func(context.Context, claimcheck.Failure) error {
		routed++
		return nil // route everything away
	}))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = c.Rehydrate(cancelled, "orders", body, h)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("rehydrate with a cancelled context: %v, want context.Canceled", err)
	}
	if claimcheck.IsPermanent(err) {
		t.Fatalf("IsPermanent(%v) = true", err)
	}
	if d, got := c.Decide(ctx, claimcheck.Failure{Topic: "orders", Body: body, Headers: h, Err: err}); d != claimcheck.Redeliver || got != err {
		t.Fatalf("transient failure = %v, %v; want Redeliver and the error itself", d, got)
	}
	if routed != 0 {
		t.Fatalf("handler saw %d transient failures", routed)
	}
	for _, perm := range []error{stash.ErrNotFound, stash.ErrExpired, stash.ErrIntegrity, claimcheck.ErrNotAllowed,
		claimcheck.ErrMalformed, claimcheck.ErrUnsupportedVersion, stash.ErrInvalidAddress} {
		if !claimcheck.IsPermanent(&claimcheck.Error{Op: "rehydrate", Err: perm}) {
			t.Errorf("IsPermanent(%v) = false", perm)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	e := newEngine(t, memstash.New())
	for name, o := range map[string]claimcheck.Option{
		"negative threshold": claimcheck.WithThreshold(-1),
		"negative margin":    claimcheck.WithMargin(-1),
		"bad namespace":      claimcheck.WithNamespace("Not_A_Namespace"),
		// A store no address can name would never match: every message
		// from it would be refused as not allowed, and discarded under
		// DiscardAfter, for a typo in the configuration.
		"store of an upper-case scheme":      claimcheck.AllowStore("MEM", "default"),
		"store of no scheme":                 claimcheck.AllowStore("", "default"),
		"store of a link scheme":             claimcheck.AllowStore("https", "default"),
		"store of no namespace":              claimcheck.AllowStore("mem", ""),
		"store of a padded namespace":        claimcheck.AllowStore("mem", "default "),
		"store of an upper-case namespace":   claimcheck.AllowStore("mem", "Default"),
		"store of a dotted mem namespace":    claimcheck.AllowStore("mem", "my.bucket"),
		"s3 store of no bucket name":         claimcheck.AllowStore("s3", "my_bucket"),
		"store of a wildcard in a namespace": claimcheck.AllowStore("mem", "tenant-*"),
	} {
		if _, err := claimcheck.New(e, o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := claimcheck.New(nil); err == nil {
		t.Error("nil engine accepted")
	}
	// What a store can be: a namespace, any namespace, and for s3 (whose
	// namespaces name buckets for AWS pointers) any bucket name.
	for _, o := range []claimcheck.Option{claimcheck.AllowStore("mem", "tenant-a"), claimcheck.AllowStore("mem", "*"),
		claimcheck.AllowStore("s3", "my.bucket"), claimcheck.AllowStore("s3", "*")} {
		if _, err := claimcheck.New(e, o); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}

func TestNamespaceAndAllowStore(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, memstash.New())
	prod := newChecker(t, e, claimcheck.WithMode(claimcheck.Always), claimcheck.WithNamespace("tenant-a"))
	out, h, addr := offloaded(t, prod, payload(2000))
	a, _ := stash.ParseAddress(addr)
	if a.Namespace != "tenant-a" {
		t.Fatalf("address %s not in tenant-a", addr)
	}
	// A consumer on the engine's default namespace refuses it...
	cons := newChecker(t, e)
	if _, _, err := cons.Rehydrate(ctx, "orders", out, maps.Clone(h)); !errors.Is(err, claimcheck.ErrNotAllowed) {
		t.Fatalf("err = %v, want ErrNotAllowed", err)
	}
	// ...until it is told to trust that store.
	cons = newChecker(t, e, claimcheck.AllowStore(memstash.Scheme, "tenant-a"))
	if got, _, err := cons.Rehydrate(ctx, "orders", out, maps.Clone(h)); err != nil || !bytes.Equal(got, payload(2000)) {
		t.Fatalf("rehydrate: %v", err)
	}
}

func TestDefaultNamer(t *testing.T) {
	for topic, want := range map[string]string{
		"":              "message",
		"orders":        "orders",
		"a/b c":         "a-b-c",
		".hidden":       "_hidden",
		"persistent://": "persistent---",
	} {
		got := claimcheck.DefaultNamer(topic, nil)
		if got != want {
			t.Errorf("DefaultNamer(%q) = %q, want %q", topic, got, want)
		}
		if err := stash.ValidateName(got); err != nil {
			t.Errorf("DefaultNamer(%q) = %q: %v", topic, got, err)
		}
	}
}

// TestErrorNamesAddressOnce: a failed rehydrate names the address once (the
// stash error has it) and keeps the operation and topic.
func TestErrorNamesAddressOnce(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, memstash.New())
	c := newChecker(t, e, claimcheck.WithMode(claimcheck.Always))
	h := claimcheck.MapHeaders{}
	body, addr, err := c.Offload(ctx, "orders", []byte("payload"), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(ctx, addr); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Rehydrate(ctx, "orders", body, h)
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("Rehydrate: %v; want ErrNotFound", err)
	}
	if msg := err.Error(); strings.Count(msg, addr) != 1 || !strings.HasPrefix(msg, "claimcheck: rehydrate on orders: stash: retrieve "+addr+": not found") {
		t.Fatalf("error %q: want the address once", msg)
	}
}

// sizedHeaders are empty headers that report a wire size of their own.
type sizedHeaders struct {
	claimcheck.MapHeaders
	size int
}

func (h sizedHeaders) WireSize() int { return h.size }

// The counted size never wraps: a margin or header size near the int limit
// counts as more than any threshold, and a negative header size (a broken
// adapter) counts as none, so a big body is never kept because the sum
// overflowed.
func TestSizeSaturates(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		margin    int
		threshold int
		body      int
		headers   int
	}{
		{"margin at the limit", math.MaxInt, claimcheck.DefaultThreshold, 1, 0},
		{"margin and headers past the limit", math.MaxInt / 2, claimcheck.DefaultThreshold, 1, math.MaxInt/2 + 2},
		{"headers at the limit", 0, claimcheck.DefaultThreshold, 1, math.MaxInt},
		{"negative header size", 0, 100, 101, -1 << 40},
	}
	for _, tc := range cases {
		c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMargin(tc.margin), claimcheck.WithThreshold(tc.threshold))
		h := sizedHeaders{claimcheck.MapHeaders{}, tc.headers}
		if n := c.Size(payload(tc.body), h); n <= tc.threshold {
			t.Errorf("%s: counted size %d, not over %d", tc.name, n, tc.threshold)
		}
		if ok, err := c.ShouldOffload(payload(tc.body), h); !ok || err != nil {
			t.Errorf("%s: ShouldOffload = %v, %v", tc.name, ok, err)
		}
		if c.Pass(ctx, "t", payload(tc.body), h) {
			t.Errorf("%s: passed as it is", tc.name)
		}
	}
	// A threshold at the limit keeps everything, a margin at it included.
	c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMargin(math.MaxInt), claimcheck.WithThreshold(math.MaxInt))
	if ok, err := c.ShouldOffload(payload(10), claimcheck.MapHeaders{"k": "v"}); ok || err != nil {
		t.Errorf("threshold at the limit: ShouldOffload = %v, %v", ok, err)
	}
}

// claimstash-size is decimal digits in their one spelling: no sign, no
// leading zero, no space, no other script's digits, no digit separator.
// Readers that parse numbers differently (Python's int takes " +0_4096 "
// and "٤٠٩٦") would otherwise agree with this one only by luck; a size that
// is not the contract's is malformed, even when it names the right number,
// and the message never reaches a handler.
func TestSizeHeaderIsCanonical(t *testing.T) {
	c := newChecker(t, newEngine(t, memstash.New()), claimcheck.WithMode(claimcheck.Always))
	body := payload(4096)
	out, h, _ := offloaded(t, c, body)
	for _, size := range []string{"+4096", "04096", "-0", "00", " 4096", "4096 ", "4_096", "٤٠٩٦", "４０９６", "0x1000", "4096.0", "4e3", "", "9223372036854775808"} {
		hh := maps.Clone(h)
		hh[claimcheck.HeaderSize] = size
		if _, _, ok, err := claimcheck.Reference(out, hh); !ok || !errors.Is(err, claimcheck.ErrMalformed) {
			t.Errorf("Reference with size %q: %v, want ErrMalformed", size, err)
		}
		got, _, err := c.Rehydrate(context.Background(), "orders", out, hh)
		if !errors.Is(err, claimcheck.ErrMalformed) || got != nil {
			t.Errorf("Rehydrate with size %q: %d bytes, %v; want ErrMalformed", size, len(got), err)
		}
		if hh[claimcheck.HeaderSize] != size {
			t.Errorf("size %q: a failed rehydrate changed the headers", size)
		}
	}
	for _, size := range []string{"0", "7", "4096", "9223372036854775807"} {
		hh := maps.Clone(h)
		hh[claimcheck.HeaderSize] = size
		if _, n, _, err := claimcheck.Reference(out, hh); err != nil || strconv.FormatInt(n, 10) != size {
			t.Errorf("Reference with size %q: %d, %v", size, n, err)
		}
	}
}
