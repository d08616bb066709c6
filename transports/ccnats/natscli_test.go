package ccnats_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/internal/testproc"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/transports/ccnats"
)

// The tests in this file hold ccnats to the README's wire contract as the
// NATS CLI (`nats`, which `make tools` builds), a client that knows nothing
// of claimstash, sees it: a claim-checked message's body is exactly one
// stash address, claimstash-version is 1, claimstash-size is the original
// size, the producer's own headers cross unchanged; and a message that
// `nats pub` sends by hand with those headers is rehydrated by ccnats. The
// stashes live in the JetStream object store of the same embedded server,
// where `nats object get` fetches one by its address alone.

// cliRig is an embedded server, a checker whose stashes are in its object
// store, a ccnats WrappedConn over it and the nats command.
type cliRig struct {
	t    *testing.T
	srv  *natstest.Server
	eng  *stash.Engine
	cc   *claimcheck.Checker
	wc   *ccnats.WrappedConn
	bin  string
	env  []string
	logs *testproc.Output // what ccnats logged
}

func newCLIRig(t *testing.T) *cliRig {
	t.Helper()
	return newRig(t, true)
}

// newRig is newCLIRig, without the nats command unless cli is true.
func newRig(t *testing.T, cli bool) *cliRig {
	t.Helper()
	var bin string
	if cli {
		bin = clitool.NATS(t)
	}
	srv := natstest.Start(t)
	st, err := natsstash.New(srv.JetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stash.New(stash.WithBackend(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	cc, err := claimcheck.New(eng)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testproc.Output{}
	wc, err := ccnats.WrapConn(srv.Connect(t), cc, ccnats.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return &cliRig{t: t, srv: srv, eng: eng, cc: cc, wc: wc, bin: bin, env: clitool.NATSEnv(t, srv.URL()), logs: logs}
}

func (r *cliRig) run(args ...string) clitool.Result {
	r.t.Helper()
	return clitool.Exec(r.t, context.Background(), r.env, nil, r.bin, append([]string{"--no-context"}, args...)...)
}

func (r *cliRig) mustRun(args ...string) clitool.Result {
	r.t.Helper()
	res := r.run(args...)
	if res.Err != nil {
		r.t.Fatalf("nats %q: %v\nstderr:\n%s\nstdout:\n%s", args, res.Err, res.Stderr, res.Stdout)
	}
	return res
}

// subscribed reports whether a client has a subscription on subject.
func (r *cliRig) subscribed(subject string) bool {
	r.t.Helper()
	cz, err := r.srv.NATSServer().Connz(&server.ConnzOptions{Subscriptions: true})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if slices.Contains(c.Subs, subject) {
			return true
		}
	}
	return false
}

// subscribe starts `nats sub subject` with args in the background and
// returns once the server has its subscription; wait collects its output.
func (r *cliRig) subscribe(subject string, args ...string) (wait func() (stdout string)) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"--no-context", "sub", subject}, args...)...)
	cmd.Env = clitool.Environ(r.env)
	out, errs := &testproc.Output{}, &testproc.Output{}
	cmd.Stdout, cmd.Stderr = out, errs
	if err := cmd.Start(); err != nil {
		cancel()
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	r.t.Cleanup(func() { cancel(); <-done })
	for !r.subscribed(subject) {
		select {
		case err := <-done:
			done <- err
			r.t.Fatalf("nats sub exited before it subscribed: %v\n%s%s", err, out.String(), errs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return func() string {
		r.t.Helper()
		var err error
		select {
		case err = <-done:
			done <- err
		case <-time.After(20 * time.Second):
			r.t.Fatalf("nats sub did not finish:\n%s%s", out.String(), errs.String())
		}
		if err != nil {
			r.t.Fatalf("nats sub: %v\n%s%s", err, out.String(), errs.String())
		}
		return out.String()
	}
}

// dumped is a message as `nats sub --dump` writes it.
type dumped struct {
	Subject string
	Header  map[string][]string
	Data    []byte
}

func readDump(t *testing.T, dir string, n int) []dumped {
	t.Helper()
	var msgs []dumped
	for i := 1; i <= n; i++ {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)+".json"))
		if err != nil {
			t.Fatalf("nats sub --dump: %v", err)
		}
		var m dumped
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("nats sub --dump %d.json: %v", i, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// checkReference checks that body and headers are a claim-check reference
// to want by the contract, and fetches the stash with `nats object get` by
// the address alone.
func (r *cliRig) checkReference(body []byte, h map[string][]string, want []byte) {
	r.t.Helper()
	if v := h[claimcheck.HeaderVersion]; len(v) != 1 || v[0] != claimcheck.ContractVersion {
		r.t.Errorf("%s: %q, want [%q]", claimcheck.HeaderVersion, v, claimcheck.ContractVersion)
	}
	size := h[claimcheck.HeaderSize]
	if len(size) != 1 || size[0] != strconv.Itoa(len(want)) {
		r.t.Errorf("%s: %q, want [%d]", claimcheck.HeaderSize, size, len(want))
	}
	if _, ok := h[claimcheck.HeaderOffload]; ok {
		r.t.Errorf("%s was sent; the contract says it is removed", claimcheck.HeaderOffload)
	}
	a, err := stash.ParseAddress(string(body))
	if err != nil || a.String() != string(body) || a.Scheme != "nats" || a.DigestAlgorithm() != stash.DigestSHA256 {
		r.t.Fatalf("body %q is not exactly one nats:// SHA-256 address: %v", body, err)
	}
	out := filepath.Join(r.t.TempDir(), "stash")
	r.mustRun("object", "get", "--force", "--no-progress", "-O", out, "claimstash_"+a.Namespace, a.Key())
	got, err := os.ReadFile(out)
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != a.Digest || strconv.Itoa(len(got)) != size[0] || !bytes.Equal(got, want) {
		r.t.Fatalf("the stash fetched by its address: %d bytes, SHA-256 %x; want %s bytes, %s", len(got), sum, size[0], a.Digest)
	}
}

// TestNATSCLISubReadsContract: `nats sub` receives what WrapConn publishes
// over the server's max_payload as a reference by the contract, the
// producer's headers (a key with two values, mixed case) unchanged and the
// per-message override gone, and a small message byte for byte with only
// its own headers; its human-readable output shows the contract headers.
func TestNATSCLISubReadsContract(t *testing.T) {
	r := newCLIRig(t)
	dir := t.TempDir()
	wait := r.subscribe("orders", "--count", "3", "--dump", dir)
	big := payload(3<<20, 71)
	small := []byte("a small body, sent as it is")
	forced := []byte("small, but sent through a stash")
	for _, m := range []*nats.Msg{
		{Subject: "orders", Data: big, Header: nats.Header{"Trace-ID": {"t-1", "t-1b"}}},
		{Subject: "orders", Data: small, Header: nats.Header{"Trace-ID": {"t-2"}}},
		{Subject: "orders", Data: forced, Header: nats.Header{"Trace-ID": {"t-3"}, claimcheck.HeaderOffload: {claimcheck.OffloadAlways}}},
	} {
		if err := r.wc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.wc.Flush(); err != nil {
		t.Fatal(err)
	}
	wait()
	msgs := readDump(t, dir, 3)

	r.checkReference(msgs[0].Data, msgs[0].Header, big)
	if v := msgs[0].Header["Trace-ID"]; len(v) != 2 || v[0] != "t-1" || v[1] != "t-1b" {
		t.Errorf("the producer's header Trace-ID: %q", v)
	}
	if len(msgs[0].Header) != 3 {
		t.Errorf("headers %v: want Trace-ID and the two contract headers only", msgs[0].Header)
	}
	if !bytes.Equal(msgs[1].Data, small) || len(msgs[1].Header) != 1 || msgs[1].Header["Trace-ID"][0] != "t-2" {
		t.Errorf("small message: %q, headers %v; want it as sent", msgs[1].Data, msgs[1].Header)
	}
	r.checkReference(msgs[2].Data, msgs[2].Header, forced)

	// The human-readable form, as an operator reads it.
	wait = r.subscribe("orders", "--count", "1")
	if err := r.wc.PublishMsg(&nats.Msg{Subject: "orders", Data: big, Header: nats.Header{"Trace-ID": {"t-4"}}}); err != nil {
		t.Fatal(err)
	}
	out := wait()
	for _, line := range []string{"\n" + claimcheck.HeaderVersion + ": 1\n", "\n" + claimcheck.HeaderSize + ": " + strconv.Itoa(len(big)) + "\n", "\nTrace-ID: t-4\n", "\n\nnats://default/orders."} {
		if !strings.Contains(out, line) {
			t.Errorf("nats sub output lacks %q:\n%s", line, out)
		}
	}
}

// TestNATSCLIReqReadsContract: `nats req` to a service on WrapConn gets a
// large reply as a reference by the contract (its headers printed, the
// body the address), and the service receives the CLI's request, headers
// included, as sent.
func TestNATSCLIReqReadsContract(t *testing.T) {
	r := newCLIRig(t)
	big := payload(2<<20, 72)
	got := make(chan *nats.Msg, 1)
	sub, err := r.wc.Subscribe("svc.report", func(m *nats.Msg) {
		got <- m
		if err := r.wc.PublishMsg(&nats.Msg{Subject: m.Reply, Data: big, Header: nats.Header{"Report-ID": {"r-1"}}}); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := r.wc.Flush(); err != nil {
		t.Fatal(err)
	}
	res := r.mustRun("req", "svc.report", "give me the report", "-H", "Caller:cli", "--timeout", "10s")
	req := <-got
	if string(req.Data) != "give me the report" || req.Header.Get("Caller") != "cli" {
		t.Errorf("the service got %q, headers %v", req.Data, req.Header)
	}
	body := strings.TrimRight(string(res.Stdout), "\n")
	stderr := string(res.Stderr)
	h := map[string][]string{}
	for _, line := range strings.Split(stderr, "\n") {
		// "15:04:05 name: value" after the "Received" line.
		if _, rest, ok := strings.Cut(line, " "); ok {
			if k, v, ok := strings.Cut(rest, ": "); ok && !strings.Contains(k, " ") {
				h[k] = append(h[k], v)
			}
		}
	}
	if h["Report-ID"] == nil || h["Report-ID"][0] != "r-1" {
		t.Errorf("nats req does not show the reply's own header Report-ID:\n%s", stderr)
	}
	delete(h, "Report-ID")
	r.checkReference([]byte(body), h, big)
}

// TestNATSCLIPubRehydrated: a reference that `nats pub` sends by hand (the
// body an address, the contract headers, a header of its own) reaches a
// WrapConn subscriber as the payload, the contract headers gone and the
// other kept; references with a lying size, an unknown stash or a store the
// checker may not read never reach it, and Rehydrate reports them with the
// typed error.
func TestNATSCLIPubRehydrated(t *testing.T) {
	r := newCLIRig(t)
	ctx := ctxT(t)
	data := payload(1<<20+5, 73)
	s, err := r.eng.Create(ctx, "by-hand", data)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Address.String()
	if !strings.HasPrefix(addr, "nats://default/by-hand.") {
		t.Fatalf("address %s", addr)
	}
	sub, err := r.wc.SubscribeSync("inbound")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	raw, err := r.wc.Unwrap().SubscribeSync("inbound")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Unsubscribe()
	if err := r.wc.Flush(); err != nil {
		t.Fatal(err)
	}
	size := strconv.Itoa(len(data))
	missing := "nats://default/by-hand." + strings.Repeat("0", 64)
	elsewhere := strings.Replace(addr, "nats://default/", "nats://other/", 1)
	bad := []struct {
		name, body, size string
		want             error
	}{
		{"lying size", addr, strconv.Itoa(len(data) - 1), stash.ErrIntegrity},
		{"unknown stash", missing, size, stash.ErrNotFound},
		{"other store", elsewhere, size, claimcheck.ErrNotAllowed},
	}
	for _, b := range bad {
		r.mustRun("pub", "inbound", b.body, "-H", claimcheck.HeaderVersion+":1", "-H", claimcheck.HeaderSize+":"+b.size, "-H", "Trace-ID:bad")
	}
	r.mustRun("pub", "inbound", addr, "-H", claimcheck.HeaderVersion+":1", "-H", claimcheck.HeaderSize+":"+size, "-H", "Trace-ID:t-9")

	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("NextMsg: %v", err)
	}
	if !equalBody(t, m.Data, data) {
		t.Fatal("the reference nats pub sent was not rehydrated")
	}
	if m.Header.Get("Trace-ID") != "t-9" || m.Header.Get(claimcheck.HeaderVersion) != "" || m.Header.Get(claimcheck.HeaderSize) != "" {
		t.Errorf("headers after rehydration: %v; want Trace-ID only", m.Header)
	}
	if n := strings.Count(r.logs.String(), "ccnats: message dropped"); n != len(bad) {
		t.Errorf("%d messages dropped and logged, want %d:\n%s", n, len(bad), r.logs.String())
	}
	for _, b := range bad {
		m, err := raw.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Trace-ID") != "bad" {
			t.Fatalf("unexpected message %v", m.Header)
		}
		if err := r.wc.Rehydrate(ctx, m); !errors.Is(err, b.want) {
			t.Errorf("%s: Rehydrate: %v, want %v", b.name, err, b.want)
		}
		if string(m.Data) != b.body {
			t.Errorf("%s: a failed Rehydrate changed the body", b.name)
		}
	}
}

// parseNATSHeaders reads a NATS header block ("NATS/1.0\r\nK: V\r\n...")
// as it is stored in a stream.
func parseNATSHeaders(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\r\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NATS/1.0") {
		t.Fatalf("not a NATS header block: %q", b)
	}
	h := map[string][]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("header line %q", l)
		}
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	return h
}

// TestNATSCLIJetStream: a message ccnats's JetStream publisher sends over
// max_payload is stored in the stream (a stream `nats stream add` made) as
// a reference by the contract, which `nats stream get` shows; a reference
// `nats pub --jetstream` sends by hand is rehydrated by ccnats.Rehydrate on
// a JetStream consumer, and one whose size lies is not: the error is
// stash.ErrIntegrity and the message is left for redelivery.
func TestNATSCLIJetStream(t *testing.T) {
	r := newCLIRig(t)
	ctx := ctxT(t)
	r.mustRun("stream", "add", "ORDERS", "--subjects", "orders.>", "--storage", "file", "--defaults")
	js := r.srv.JetStream(t)
	pub, err := ccnats.NewJetStream(js, r.cc)
	if err != nil {
		t.Fatal(err)
	}
	big := payload(3<<20, 74)
	ack, err := pub.PublishMsg(ctx, &nats.Msg{Subject: "orders.big", Data: big, Header: nats.Header{"Trace-ID": {"j-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	var stored struct {
		Subject string `json:"subject"`
		Header  []byte `json:"hdrs"`
		Data    []byte `json:"data"`
	}
	out := r.mustRun("stream", "get", "ORDERS", strconv.FormatUint(ack.Sequence, 10), "--json").Stdout
	if err := json.Unmarshal(out, &stored); err != nil || stored.Subject != "orders.big" {
		t.Fatalf("nats stream get: %v\n%s", err, out)
	}
	h := parseNATSHeaders(t, stored.Header)
	if v := h["Trace-ID"]; len(v) != 1 || v[0] != "j-1" {
		t.Errorf("the producer's header in the stream: %q", v)
	}
	delete(h, "Trace-ID")
	r.checkReference(stored.Data, h, big)

	data := payload(1<<20+1, 75)
	s, err := r.eng.Create(ctx, "by-hand", data)
	if err != nil {
		t.Fatal(err)
	}
	size := strconv.Itoa(len(data))
	r.mustRun("pub", "--jetstream", "orders.in", s.Address.String(), "-H", claimcheck.HeaderVersion+":1", "-H", claimcheck.HeaderSize+":"+size, "-H", "Trace-ID:j-2")
	r.mustRun("pub", "--jetstream", "orders.in", s.Address.String(), "-H", claimcheck.HeaderVersion+":1", "-H", claimcheck.HeaderSize+":7", "-H", "Trace-ID:j-3")
	cons, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{FilterSubject: "orders.in", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("fetched %d messages, want 2 (%v)", len(msgs), batch.Error())
	}
	m, err := ccnats.Rehydrate(ctx, r.cc, msgs[0])
	if err != nil || !equalBody(t, m.Data(), data) {
		t.Fatalf("Rehydrate of the reference nats pub sent: %v", err)
	}
	if m.Headers().Get("Trace-ID") != "j-2" || m.Headers().Get(claimcheck.HeaderVersion) != "" || m.Headers().Get(claimcheck.HeaderSize) != "" {
		t.Errorf("headers after rehydration: %v", m.Headers())
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
	if _, err := ccnats.Rehydrate(ctx, r.cc, msgs[1]); !errors.Is(err, stash.ErrIntegrity) || errors.Is(err, ccnats.ErrTerminated) {
		t.Fatalf("Rehydrate of a reference with a lying size: %v, want stash.ErrIntegrity, not terminated", err)
	}
}
