package ccnats_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

func TestRefusesServerWithoutHeaders(t *testing.T) {
	srv := natstest.Start(t, func(o *server.Options) { o.NoHeaderSupport = true })
	nc := srv.Connect(t)
	cc, _ := newChecker(t)
	if _, err := ccnats.NewConn(nc, cc); !errors.Is(err, ccnats.ErrHeadersNotSupported) {
		t.Fatalf("NewConn: err = %v, want ErrHeadersNotSupported", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ccnats.NewJetStream(js, cc); !errors.Is(err, ccnats.ErrHeadersNotSupported) {
		t.Fatalf("NewJetStream: err = %v, want ErrHeadersNotSupported", err)
	}
}

// Messages many times the server's default 1 MiB max_payload go through,
// headers and all.
func TestCoreLargeMessages(t *testing.T) {
	srv := natstest.Start(t)
	pubNC, subNC := srv.Connect(t), srv.Connect(t)
	if mp := pubNC.MaxPayload(); mp != 1<<20 {
		t.Fatalf("server max_payload = %d, want the default 1 MiB", mp)
	}
	cc, _ := newChecker(t)
	conn, err := ccnats.NewConn(pubNC, cc)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, 1)
	sub, err := subNC.Subscribe("big.>", ccnats.MsgHandler(cc, func(m *nats.Msg) { got <- m }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := subNC.Flush(); err != nil {
		t.Fatal(err)
	}

	for _, size := range []int{8 << 20, 64 << 20} {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			ctx := ctxT(t)
			body := payload(size, uint64(size))
			subj := fmt.Sprintf("big.%d", size)
			if err := pubNC.Publish(subj, body); !errors.Is(err, nats.ErrMaxPayload) {
				t.Fatalf("raw publish of %d bytes: err = %v, want nats.ErrMaxPayload", size, err)
			}
			m := nats.NewMsg(subj)
			m.Data = body
			m.Header.Set("app-key", "v1")
			m.Header.Add("Mixed-Case", "a")
			m.Header.Add("Mixed-Case", "b")
			if err := conn.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			if len(m.Data) != size || len(m.Header) != 2 {
				t.Fatalf("PublishMsg changed the caller's message: %d bytes, headers %v", len(m.Data), m.Header)
			}
			r := recv(t, got, 30*time.Second)
			if !equalBody(t, r.Data, body) {
				t.FailNow()
			}
			if r.Header.Get("app-key") != "v1" || len(r.Header.Values("Mixed-Case")) != 2 || r.Header.Values("Mixed-Case")[1] != "b" {
				t.Fatalf("headers not preserved: %v", r.Header)
			}
			if _, ok := r.Header[claimcheck.HeaderVersion]; ok {
				t.Fatalf("contract header left on the rehydrated message: %v", r.Header)
			}
			if _, ok := r.Header[claimcheck.HeaderSize]; ok {
				t.Fatalf("contract header left on the rehydrated message: %v", r.Header)
			}
		})
	}
}

// Below the threshold the message is sent as given, byte for byte.
func TestCoreSmallPassesThrough(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	cc, _ := newChecker(t)
	conn, err := ccnats.NewConn(nc, cc)
	if err != nil {
		t.Fatal(err)
	}
	raw := make(chan *nats.Msg, 2)
	sub, err := nc.ChanSubscribe("small", raw)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := conn.Publish(ctxT(t), "small", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := recv(t, raw, 5*time.Second)
	if string(r.Data) != "hello" || r.Header != nil {
		t.Fatalf("got %q with headers %v", r.Data, r.Header)
	}
	m := nats.NewMsg("small")
	m.Header.Set("k", "v")
	m.Header.Set(claimcheck.HeaderOffload, claimcheck.OffloadNever)
	m.Data = payload(300<<10, 1)
	if err := conn.PublishMsg(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	r = recv(t, raw, 5*time.Second)
	equalBody(t, r.Data, m.Data)
	if len(r.Header) != 1 || r.Header.Get("k") != "v" {
		t.Fatalf("headers = %v, want only k (the override removed)", r.Header)
	}
	if m.Header.Get(claimcheck.HeaderOffload) != claimcheck.OffloadNever {
		t.Fatal("the caller's message lost its override header")
	}
}

func TestQueueGroupDeliversEachMessageToOneMember(t *testing.T) {
	srv := natstest.Start(t)
	cc, _ := newChecker(t)
	conn, err := ccnats.NewConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	const members, n = 3, 24
	type delivery struct {
		member int
		id     string
	}
	got := make(chan delivery, n*members)
	for i := range members {
		member, err := ccnats.NewConn(srv.Connect(t), cc)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := member.QueueSubscribe("work", "workers", func(m *nats.Msg) {
			if len(m.Data) != 400<<10 {
				t.Errorf("member %d: %d bytes", i, len(m.Data))
			}
			got <- delivery{i, m.Header.Get("id")}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := member.NATS().Flush(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t)
	for i := range n {
		m := nats.NewMsg("work")
		m.Header.Set("id", fmt.Sprint(i))
		m.Data = payload(400<<10, uint64(i))
		if err := conn.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	perMember := map[int]int{}
	for range n {
		d := recv(t, got, 10*time.Second)
		seen[d.id]++
		perMember[d.member]++
	}
	select {
	case d := <-got:
		t.Fatalf("extra delivery %v", d)
	case <-time.After(200 * time.Millisecond):
	}
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("message %d delivered %d times", i, seen[fmt.Sprint(i)])
		}
	}
	if len(perMember) < 2 {
		t.Logf("all messages went to one member: %v", perMember)
	}
}

// A stash that cannot be read never reaches the handler; the error does.
func TestCoreRehydrateFailure(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect(t)
	errs := make(chan error, 1)
	cc, eng := newChecker(t, failures(errs))
	conn, err := ccnats.NewConn(nc, cc)
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan *nats.Msg, 1)
	sub, err := conn.Subscribe("gone", func(m *nats.Msg) { handled <- m }, ccnats.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ctx := ctxT(t)
	// Write the stash, delete it, then publish the claim-checked message.
	body := payload(2<<20, 7)
	h := claimcheck.MapHeaders{}
	out, addr, err := cc.Offload(ctx, "gone", body, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Delete(ctx, addr); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("gone")
	for k, v := range h {
		m.Header.Set(k, v)
	}
	m.Data = out
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	err = recv(t, errs, 5*time.Second)
	if !errors.Is(err, stash.ErrNotFound) {
		t.Fatalf("err = %v, want stash.ErrNotFound", err)
	}
	var se *stash.Error
	if !errors.As(err, &se) || se.Address != addr {
		t.Fatalf("err = %v, want a *stash.Error for %s", err, addr)
	}
	select {
	case m := <-handled:
		t.Fatalf("handler called with %q", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRequestRespondBothLarge(t *testing.T) {
	srv := natstest.Start(t)
	cc, _ := newChecker(t)
	client, err := ccnats.NewConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ccnats.NewConn(srv.Connect(t), cc)
	if err != nil {
		t.Fatal(err)
	}
	req, reply := payload(3<<20, 1), payload(5<<20, 2)
	var wg sync.WaitGroup
	sub, err := server.Subscribe("svc", func(m *nats.Msg) {
		equalBody(t, m.Data, req)
		wg.Add(1)
		defer wg.Done()
		if err := server.Respond(ctxT(t), m, reply); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := server.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := client.Request(ctxT(t), "svc", req)
	if err != nil {
		t.Fatal(err)
	}
	equalBody(t, r.Data, reply)
	if claimcheck.IsClaimChecked(ccnats.Header(r.Header)) {
		t.Fatal("reply still marked claim-checked")
	}
	wg.Wait()
}
