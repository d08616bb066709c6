package ccnats_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/internal/pypeer"
)

// pyPeer is a Python NATS peer on nats-py: it subscribes to "to.python",
// signals it is ready on "python.ready", takes one message and, if it is a
// reference by the contract, fetches the stash from the object store by the
// address alone and checks it as the README tells a consumer without
// claimstash to; then it publishes a reference of its own (to a stash it
// puts in the object store) on "from.python", with a header of its own.
const pyPeer = `
import asyncio, base64, hashlib, json, sys
import nats

async def main():
    req = json.loads(sys.stdin.read())
    nc = await nats.connect(req["url"])
    js = nc.jetstream()
    sub = await nc.subscribe("to.python")
    await nc.publish("python.ready", b"")
    msg = await sub.next_msg(timeout=20)
    h = msg.headers or {}
    out = {"headers": h, "body": msg.data.decode()}
    if h.get("claimstash-version") == "1":
        addr = msg.data.decode()
        scheme, rest = addr.split("://", 1)
        ns, key = rest.split("/", 1)
        obj = await (await js.object_store("claimstash_" + ns)).get(key)
        digest = key.rsplit(".", 1)[1]
        out["fetched"] = len(obj.data)
        out["digest_ok"] = hashlib.sha256(obj.data).hexdigest() == digest
        out["size_ok"] = len(obj.data) == int(h["claimstash-size"])
    data = base64.b64decode(req["send"])
    key = "python." + hashlib.sha256(data).hexdigest()
    obs = await js.object_store("claimstash_default")
    await obs.put(key, data)
    await nc.publish("from.python", ("nats://default/" + key).encode(), headers={
        "claimstash-version": "1", "claimstash-size": str(len(data)), "Sender": "python"})
    await nc.flush()
    await nc.close()
    print(json.dumps(out))

asyncio.run(main())
`

// TestPythonPeer: nats-py, a consumer without claimstash, receives what
// WrapConn publishes over max_payload as the contract says and fetches the
// stash by its address alone, digest and size matching; a reference it
// publishes by hand, to a stash it put in the object store, reaches a
// WrapConn subscriber as the payload with its own header.
func TestPythonPeer(t *testing.T) {
	py := pypeer.Python(t)
	r := newRig(t, false)
	ctx := ctxT(t)
	big := payload(2<<20, 91)
	fromPy := payload(1<<20+11, 92)
	ready, err := r.wc.SubscribeSync("python.ready")
	if err != nil {
		t.Fatal(err)
	}
	back, err := r.wc.SubscribeSync("from.python")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.wc.Flush(); err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(map[string]any{"url": r.srv.URL(), "send": fromPy})
	cmd := exec.CommandContext(ctx, py, "-c", pyPeer)
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if _, err := ready.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("the python peer did not subscribe: %v\n%s", err, stderr.String())
	}
	if err := r.wc.PublishMsg(&nats.Msg{Subject: "to.python", Data: big, Header: nats.Header{"Trace-ID": {"p-1"}}}); err != nil {
		t.Fatal(err)
	}
	m, err := back.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("nothing from the python peer: %v\n%s", err, stderr.String())
	}
	if !equalBody(t, m.Data, fromPy) || m.Header.Get("Sender") != "python" || m.Header.Get(claimcheck.HeaderVersion) != "" {
		t.Errorf("the python reference rehydrated: %d bytes, headers %v", len(m.Data), m.Header)
	}
	var got struct {
		Headers  map[string]string
		Body     string
		Fetched  int
		DigestOK bool `json:"digest_ok"`
		SizeOK   bool `json:"size_ok"`
	}
	if err := <-done; err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.Bytes())
	}
	done <- nil
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("python: %v\n%s", err, stdout.Bytes())
	}
	if got.Headers[claimcheck.HeaderVersion] != "1" || got.Headers[claimcheck.HeaderSize] != strconv.Itoa(len(big)) || got.Headers["Trace-ID"] != "p-1" {
		t.Errorf("headers as python saw them: %v", got.Headers)
	}
	if got.Fetched != len(big) || !got.DigestOK || !got.SizeOK {
		t.Errorf("python fetched %d bytes by the address %s (digest ok %v, size ok %v)", got.Fetched, got.Body, got.DigestOK, got.SizeOK)
	}
}
