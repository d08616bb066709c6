package ccnats_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/transports/ccnats"
)

const smallMaxPayload = 64 << 10

// capEnv is a real nats-server with a max_payload of 64 KiB, a publishing
// connection on it wrapped with cc in each of ccnats' ways, and one plain
// nats.go connection whose subscriptions on "lim.>" and "limjs.>" are
// decorated by ccnats (MsgHandler) and hand what they receive to got. The
// "lim.>" handler answers a request with "ok"; "limjs.>" is captured by a
// stream, whose acknowledgements answer the JetStream publishes.
type capEnv struct {
	conn *ccnats.Conn
	wc   *ccnats.WrappedConn
	js   *ccnats.JetStream
	ljs  *ccnats.JetStreamContext
	got  <-chan *nats.Msg
}

func capServer(t *testing.T, cc *claimcheck.Checker) *capEnv {
	t.Helper()
	srv := natstest.Start(t, func(o *server.Options) { o.MaxPayload = smallMaxPayload })
	pubNC, subNC := srv.Connect(t), srv.Connect(t)
	if mp := pubNC.MaxPayload(); mp != smallMaxPayload {
		t.Fatalf("server max_payload = %d, want %d", mp, smallMaxPayload)
	}
	e := &capEnv{}
	var err error
	if e.conn, err = ccnats.NewConn(pubNC, cc); err != nil {
		t.Fatal(err)
	}
	if e.wc, err = ccnats.WrapConn(pubNC, cc); err != nil {
		t.Fatal(err)
	}
	if e.ljs, err = e.wc.JetStream(); err != nil {
		t.Fatal(err)
	}
	raw, err := jetstream.New(pubNC)
	if err != nil {
		t.Fatal(err)
	}
	if e.js, err = ccnats.NewJetStream(raw, cc); err != nil {
		t.Fatal(err)
	}
	newStream(t, raw, "LIMJS", "limjs.>")
	got := make(chan *nats.Msg, 4)
	e.got = got
	sub, err := subNC.Subscribe("lim.>", ccnats.MsgHandler(cc, func(m *nats.Msg) {
		got <- m
		if m.Reply != "" {
			_ = m.Respond([]byte("ok"))
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	jsSub, err := subNC.Subscribe("limjs.>", ccnats.MsgHandler(cc, func(m *nats.Msg) { got <- m }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jsSub.Unsubscribe() })
	if err := subNC.Flush(); err != nil {
		t.Fatal(err)
	}
	return e
}

// limitsServer is capEnv's core NATS Conn and what arrives on "lim.>".
func limitsServer(t *testing.T, cc *claimcheck.Checker) (*ccnats.Conn, <-chan *nats.Msg) {
	t.Helper()
	e := capServer(t, cc)
	return e.conn, e.got
}

// manyHeaders returns n short headers: the framing nats.go adds to each
// line (": " and CRLF, 4 bytes) is larger than the key and value together,
// 400 of them add 1,612 bytes of framing, more than the default margin.
func manyHeaders(n int) nats.Header {
	h := nats.Header{}
	for i := range n {
		h.Set(fmt.Sprintf("h%03d", i), "v")
	}
	return h
}

// With the threshold at the server's max_payload and no margin, a message
// whose body plus headers is one byte under, exactly at and one byte over
// the threshold is sent as it is, sent as it is (and fits the server to the
// byte), and claim-checked, in that order: the headers' size counts what
// nats.go puts on the wire, framing included.
func TestMaxPayloadBoundaryWithManyHeaders(t *testing.T) {
	var offloads addresses
	cc, _ := newChecker(t, claimcheck.WithThreshold(smallMaxPayload), claimcheck.WithMargin(0), claimcheck.WithObserver(&offloads))
	conn, got := limitsServer(t, cc)
	h := manyHeaders(400)
	wire := ccnats.Header(h).WireSize()
	for _, delta := range []int{-1, 0, 1} {
		t.Run(fmt.Sprintf("%+d", delta), func(t *testing.T) {
			before := len(offloads.get())
			body := payload(smallMaxPayload-wire+delta, uint64(delta+10))
			if n := cc.Size(body, ccnats.Header(h)); n != smallMaxPayload+delta {
				t.Fatalf("counted size = %d, want %d", n, smallMaxPayload+delta)
			}
			m := &nats.Msg{Subject: "lim.many", Header: h, Data: body}
			if err := conn.PublishMsg(ctxT(t), m); err != nil {
				t.Fatalf("publish of %d bytes and %d of headers: %v", len(body), wire, err)
			}
			r := recv(t, got, 10*time.Second)
			equalBody(t, r.Data, body)
			if len(r.Header) != len(h) {
				t.Errorf("received %d headers, want %d", len(r.Header), len(h))
			}
			offloaded := len(offloads.get()) > before
			if want := delta > 0; offloaded != want {
				t.Errorf("offloaded = %v, want %v", offloaded, want)
			}
		})
	}
}

// capPaths is every claim-checked publish path of ccnats, each sending
// body (with h, where it takes headers) on a subject of its own that
// capEnv's decorated subscriber receives. The request paths check the
// reply.
var capPaths = []struct {
	name    string
	headers bool
	send    func(t *testing.T, e *capEnv, body []byte, h nats.Header) error
}{
	{"Conn.Publish", false, func(t *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return e.conn.Publish(ctxT(t), "lim.conn.publish", body)
	}},
	{"Conn.PublishMsg", true, func(t *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return e.conn.PublishMsg(ctxT(t), &nats.Msg{Subject: "lim.conn.publishmsg", Header: h, Data: body})
	}},
	{"Conn.Request", false, func(t *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return okReply(e.conn.Request(ctxT(t), "lim.conn.request", body))
	}},
	{"Conn.RequestMsg", true, func(t *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return okReply(e.conn.RequestMsg(ctxT(t), &nats.Msg{Subject: "lim.conn.requestmsg", Header: h, Data: body}))
	}},
	{"Conn.Respond", false, func(t *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return e.conn.Respond(ctxT(t), &nats.Msg{Subject: "x", Reply: "lim.conn.respond"}, body)
	}},
	{"Conn.RespondMsg", true, func(t *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return e.conn.RespondMsg(ctxT(t), &nats.Msg{Subject: "x", Reply: "lim.conn.respondmsg"}, &nats.Msg{Header: h, Data: body})
	}},
	{"WrappedConn.Publish", false, func(_ *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return e.wc.Publish("lim.wc.publish", body)
	}},
	{"WrappedConn.PublishMsg", true, func(_ *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return e.wc.PublishMsg(&nats.Msg{Subject: "lim.wc.publishmsg", Header: h, Data: body})
	}},
	{"WrappedConn.PublishRequest", false, func(_ *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return e.wc.PublishRequest("lim.wc.publishrequest", "nobody.listens", body)
	}},
	{"WrappedConn.Request", false, func(_ *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return okReply(e.wc.Request("lim.wc.request", body, 10*time.Second))
	}},
	{"WrappedConn.RequestMsg", true, func(_ *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return okReply(e.wc.RequestMsg(&nats.Msg{Subject: "lim.wc.requestmsg", Header: h, Data: body}, 10*time.Second))
	}},
	{"WrappedConn.RequestWithContext", false, func(t *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return okReply(e.wc.RequestWithContext(ctxT(t), "lim.wc.requestctx", body))
	}},
	{"WrappedConn.RequestMsgWithContext", true, func(t *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return okReply(e.wc.RequestMsgWithContext(ctxT(t), &nats.Msg{Subject: "lim.wc.requestmsgctx", Header: h, Data: body}))
	}},
	{"JetStream.Publish", false, func(t *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		_, err := e.js.Publish(ctxT(t), "limjs.publish", body)
		return err
	}},
	{"JetStream.PublishMsg", true, func(t *testing.T, e *capEnv, body []byte, h nats.Header) error {
		_, err := e.js.PublishMsg(ctxT(t), &nats.Msg{Subject: "limjs.publishmsg", Header: h, Data: body})
		return err
	}},
	{"JetStream.PublishAsync", false, func(_ *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return ack(e.js.PublishAsync("limjs.publishasync", body))
	}},
	{"JetStream.PublishMsgAsync", true, func(_ *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return ack(e.js.PublishMsgAsync(&nats.Msg{Subject: "limjs.publishmsgasync", Header: h, Data: body}))
	}},
	{"JetStreamContext.Publish", false, func(_ *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		_, err := e.ljs.Publish("limjs.legacy.publish", body)
		return err
	}},
	{"JetStreamContext.PublishMsg", true, func(_ *testing.T, e *capEnv, body []byte, h nats.Header) error {
		_, err := e.ljs.PublishMsg(&nats.Msg{Subject: "limjs.legacy.publishmsg", Header: h, Data: body})
		return err
	}},
	{"JetStreamContext.PublishAsync", false, func(_ *testing.T, e *capEnv, body []byte, _ nats.Header) error {
		return ack(e.ljs.PublishAsync("limjs.legacy.publishasync", body))
	}},
	{"JetStreamContext.PublishMsgAsync", true, func(_ *testing.T, e *capEnv, body []byte, h nats.Header) error {
		return ack(e.ljs.PublishMsgAsync(&nats.Msg{Subject: "limjs.legacy.publishmsgasync", Header: h, Data: body}))
	}},
}

func okReply(m *nats.Msg, err error) error {
	if err != nil {
		return err
	}
	if string(m.Data) != "ok" {
		return fmt.Errorf("reply %q, want \"ok\"", m.Data)
	}
	return nil
}

// ack waits for the acknowledgement of an asynchronous JetStream publish,
// through the jetstream package (jetstream.PubAckFuture) or the legacy
// API (nats.PubAckFuture).
func ack[A any](f interface {
	Ok() <-chan A
	Err() <-chan error
}, err error) error {
	if err != nil {
		return err
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-time.After(10 * time.Second):
		return errors.New("no acknowledgement")
	}
}

// nothingArrives fails if a message reaches the subscriber within a short
// wait.
func nothingArrives(t *testing.T, got <-chan *nats.Msg) {
	t.Helper()
	select {
	case m := <-got:
		t.Errorf("a message arrived: %d bytes on %s", len(m.Data), m.Subject)
	case <-time.After(100 * time.Millisecond):
	}
}

// On a server whose max_payload (64 KiB) is under the checker's threshold
// (256 KiB, the default), a 100 KiB message is claim-checked by every
// publish path, and arrives rehydrated, its headers intact; a message that
// fits is sent as it is.
func TestOverMaxPayloadUnderThreshold(t *testing.T) {
	var offloads addresses
	cc, _ := newChecker(t, claimcheck.WithObserver(&offloads))
	e := capServer(t, cc)
	for i, p := range capPaths {
		t.Run(p.name, func(t *testing.T) {
			for _, size := range []int{100 << 10, 60 << 10} {
				body := payload(size, uint64(100+2*i+size>>16))
				var h nats.Header
				if p.headers {
					h = nats.Header{"k": {"v"}}
				}
				before := len(offloads.get())
				if err := p.send(t, e, body, h); err != nil {
					t.Fatalf("%d KiB: %v", size>>10, err)
				}
				if p.headers && (len(h) != 1 || h.Get("k") != "v") {
					t.Errorf("%d KiB: the caller's header changed: %v", size>>10, h)
				}
				m := recv(t, e.got, 10*time.Second)
				equalBody(t, m.Data, body)
				if p.headers && m.Header.Get("k") != "v" {
					t.Errorf("%d KiB: headers %v, want k: v", size>>10, m.Header)
				}
				if claimcheck.IsClaimChecked(ccnats.Header(m.Header)) {
					t.Errorf("%d KiB: contract headers left: %v", size>>10, m.Header)
				}
				offloaded := len(offloads.get()) > before
				if want := size > smallMaxPayload; offloaded != want {
					t.Errorf("%d KiB: offloaded = %v, want %v", size>>10, offloaded, want)
				}
			}
		})
	}
}

// A message over max_payload that the policy keeps in the message is sent
// as it is, and NATS refuses it: in Never mode, and with the producer's
// claimstash-offload: never.
func TestOverMaxPayloadKeptByPolicy(t *testing.T) {
	body := payload(100<<10, 7)
	t.Run("Never", func(t *testing.T) {
		var offloads addresses
		cc, _ := newChecker(t, claimcheck.WithMode(claimcheck.Never), claimcheck.WithObserver(&offloads))
		e := capServer(t, cc)
		for _, p := range capPaths {
			if err := p.send(t, e, body, nil); !errors.Is(err, nats.ErrMaxPayload) {
				t.Errorf("%s: err = %v, want nats.ErrMaxPayload", p.name, err)
			}
		}
		if n := len(offloads.get()); n != 0 {
			t.Errorf("%d offloads", n)
		}
		nothingArrives(t, e.got)
	})
	t.Run("override", func(t *testing.T) {
		var offloads addresses
		cc, _ := newChecker(t, claimcheck.WithObserver(&offloads))
		e := capServer(t, cc)
		for _, p := range capPaths {
			if !p.headers {
				continue
			}
			h := nats.Header{claimcheck.HeaderOffload: {claimcheck.OffloadNever}}
			if err := p.send(t, e, body, h); !errors.Is(err, nats.ErrMaxPayload) {
				t.Errorf("%s: err = %v, want nats.ErrMaxPayload", p.name, err)
			}
			if v := h.Get(claimcheck.HeaderOffload); v != claimcheck.OffloadNever || len(h) != 1 {
				t.Errorf("%s: the caller's header changed: %v", p.name, h)
			}
		}
		if n := len(offloads.get()); n != 0 {
			t.Errorf("%d offloads", n)
		}
		nothingArrives(t, e.got)
	})
}

// A reference whose user headers alone are over max_payload cannot be
// sent: the publish fails with nats.ErrMaxPayload, in the package's
// claimcheck.Error, before any stash is written; both for a message over
// the threshold and for one claim-checked for max_payload.
func TestReferenceOverMaxPayloadIsAnError(t *testing.T) {
	var offloads addresses
	cc, _ := newChecker(t, claimcheck.WithObserver(&offloads))
	e := capServer(t, cc)
	big := nats.Header{"big": {strings.Repeat("x", smallMaxPayload)}}
	for _, size := range []int{300 << 10, 100 << 10} {
		for _, p := range capPaths {
			if !p.headers {
				continue
			}
			err := p.send(t, e, payload(size, 3), big)
			var ce *claimcheck.Error
			if !errors.Is(err, nats.ErrMaxPayload) || !errors.As(err, &ce) {
				t.Errorf("%s, %d KiB: err = %v, want a *claimcheck.Error matching nats.ErrMaxPayload", p.name, size>>10, err)
			}
		}
	}
	if n := len(offloads.get()); n != 0 {
		t.Errorf("%d stashes written for references that cannot be sent", n)
	}
	nothingArrives(t, e.got)

	// Headers of half the cap leave room for the reference: it is sent.
	half := nats.Header{"half": {strings.Repeat("x", smallMaxPayload/2)}}
	body := payload(100<<10, 4)
	if err := e.conn.PublishMsg(ctxT(t), &nats.Msg{Subject: "lim.half", Header: half, Data: body}); err != nil {
		t.Fatal(err)
	}
	m := recv(t, e.got, 10*time.Second)
	equalBody(t, m.Data, body)
	if m.Header.Get("half") != half.Get("half") {
		t.Error("the producer's header did not arrive")
	}
	if n := len(offloads.get()); n != 1 {
		t.Errorf("%d offloads, want 1", n)
	}
}

// A publisher that kept a larger max_payload than the server's (read
// before a reconnect) sends the message, nats.go refuses it, and the
// publisher reads max_payload again and sends it claim-checked: every
// path, the request paths and the JetStream ones included.
func TestStaleMaxPayload(t *testing.T) {
	var offloads addresses
	cc, _ := newChecker(t, claimcheck.WithObserver(&offloads))
	e := capServer(t, cc)
	for i, p := range capPaths {
		t.Run(p.name, func(t *testing.T) {
			for _, w := range []any{e.conn, e.wc, e.js} {
				ccnats.KeepMaxPayload(w, 1<<20)
			}
			body := payload(100<<10, uint64(200+i))
			var h nats.Header
			if p.headers {
				h = nats.Header{"k": {"v"}}
			}
			before := len(offloads.get())
			if err := p.send(t, e, body, h); err != nil {
				t.Fatal(err)
			}
			m := recv(t, e.got, 10*time.Second)
			equalBody(t, m.Data, body)
			if len(offloads.get()) != before+1 {
				t.Errorf("offloads: %d, want %d", len(offloads.get()), before+1)
			}
		})
	}
}

// The same across a real reconnect: the server the connection was wrapped
// on (1 MiB) is replaced, on the same port, by one whose max_payload is
// 64 KiB.
func TestMaxPayloadAfterReconnect(t *testing.T) {
	var offloads addresses
	cc, _ := newChecker(t, claimcheck.WithObserver(&offloads))
	first := natstest.Start(t)
	port := first.NATSServer().Addr().(*net.TCPAddr).Port
	pubNC, subNC := first.Connect(t), first.Connect(t)
	wc, err := ccnats.WrapConn(pubNC, cc)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, 4)
	sub, err := subNC.Subscribe("re.>", ccnats.MsgHandler(cc, func(m *nats.Msg) { got <- m }))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	first.Shutdown()
	natstest.Start(t, func(o *server.Options) { o.Port = port; o.MaxPayload = smallMaxPayload })
	deadline := time.Now().Add(10 * time.Second)
	for pubNC.MaxPayload() != smallMaxPayload || !subNC.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected: max_payload %d, subscriber %v", pubNC.MaxPayload(), subNC.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := subNC.Flush(); err != nil {
		t.Fatal(err)
	}
	body := payload(100<<10, 300)
	if err := wc.PublishMsg(&nats.Msg{Subject: "re.x", Header: nats.Header{"k": {"v"}}, Data: body}); err != nil {
		t.Fatal(err)
	}
	m := recv(t, got, 10*time.Second)
	equalBody(t, m.Data, body)
	if n := len(offloads.get()); n != 1 {
		t.Errorf("%d offloads, want 1", n)
	}
}
