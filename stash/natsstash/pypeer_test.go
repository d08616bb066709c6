package natsstash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// pyObjectStore is the Python peer: nats-py's object store reads the
// objects it is given (nats-py checks the object store's SHA-256 as it
// reads) and reports what it sees, including the metadata entry read raw
// from the bucket's stream (nats-py's ObjectInfo has no metadata field),
// then puts the objects it is asked to put.
const pyObjectStore = `
import asyncio, base64, hashlib, json, sys
import nats

async def main():
    req = json.loads(sys.stdin.read())
    nc = await nats.connect(req["url"])
    js = nc.jetstream()
    obs = await js.object_store(req["bucket"])
    seen = {}
    for name in req["get"]:
        res = await obs.get(name)
        subj = "$O.%s.M.%s" % (req["bucket"], base64.urlsafe_b64encode(name.encode()).decode())
        raw = await js.get_last_msg("OBJ_" + req["bucket"], subj)
        seen[name] = {
            "size": res.info.size,
            "digest": res.info.digest,
            "sha256": hashlib.sha256(res.data).hexdigest(),
            "data": base64.b64encode(res.data).decode(),
            "metadata": json.loads(raw.data).get("metadata", {}),
            "headers": {k: v[0] if isinstance(v, list) else v for k, v in (res.info.headers or {}).items()},
        }
    for name, data in req["put"].items():
        await obs.put(name, base64.b64decode(data))
    await nc.close()
    print(json.dumps(seen))

asyncio.run(main())
`

// TestPythonObjectStore: nats-py, the Python NATS client, reads what the
// engine stores (a stash stored as given, byte-exact, its SHA-256 the
// address digest; a compressed one as its zstd bytes, with the header
// Content-Encoding: zstd; both with the claimstash-attributes metadata
// entry), and what nats-py puts under the
// documented layout is read and verified by the engine, a wrong one refused.
func TestPythonObjectStore(t *testing.T) {
	pypeer.Python(t)
	srv := natstest.Start(t)
	st, err := natsstash.New(srv.JetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithInlineMax(-1), stash.WithNamespace("py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw := stashtest.RandomPayload(700<<10, 81)
	packed := halfCompressible(500<<10, 82)
	sRaw, err := e.Create(ctx, "raw", raw, stash.Compress(stash.CompressionNone))
	if err != nil {
		t.Fatal(err)
	}
	sZstd, err := e.Create(ctx, "packed", packed, stash.Compress(stash.CompressionZstd))
	if err != nil || sZstd.Encoding != driver.EncodingZstd {
		t.Fatalf("Create: %v, encoding %q", err, sZstd.Encoding)
	}
	fromPy := stashtest.RandomPayload(400<<10, 83)
	req, _ := json.Marshal(map[string]any{
		"url": srv.URL(), "bucket": st.BucketName("py"),
		"get": []string{sRaw.Address.Key(), sZstd.Address.Key()},
		"put": map[string][]byte{"py." + sha(fromPy): fromPy, "wrong." + sha(raw): fromPy},
	})
	out := pypeer.RunStdin(t, ctx, nil, req, "-c", pyObjectStore)
	var seen map[string]struct {
		Size     int64
		Digest   string
		SHA256   string
		Data     []byte
		Metadata map[string]string
		Headers  map[string]string
	}
	if err := json.Unmarshal(out, &seen); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for _, s := range []*stash.Stash{sRaw, sZstd} {
		got, ok := seen[s.Address.Key()]
		if !ok {
			t.Fatalf("python did not read %s", s.Address.Key())
		}
		if got.Size != s.StoredSize || int64(len(got.Data)) != s.StoredSize || !strings.HasPrefix(got.Digest, "SHA-256=") {
			t.Errorf("%s: python saw %d bytes (%d read), digest %q; stored %d", s.Address, got.Size, len(got.Data), got.Digest, s.StoredSize)
		}
		var a driver.Attributes
		if err := json.Unmarshal([]byte(got.Metadata[natsstash.MetadataKey]), &a); err != nil || a.Digest != s.Address.Digest || a.Encoding != s.Encoding {
			t.Errorf("%s: %s as python read it: %+v %v", s.Address, natsstash.MetadataKey, a, err)
		}
	}
	if got := seen[sRaw.Address.Key()]; got.SHA256 != sRaw.Address.Digest || !bytes.Equal(got.Data, raw) {
		t.Errorf("the stash stored as given, as python read it: SHA-256 %s, want the address digest %s", got.SHA256, sRaw.Address.Digest)
	}
	if got := seen[sZstd.Address.Key()]; !bytes.Equal(unzstd(t, got.Data), packed) || got.Headers["Content-Encoding"] != "zstd" {
		t.Errorf("the compressed stash, as python read it, is not the payload's zstd labelled so (headers %v)", got.Headers)
	}
	if h := seen[sRaw.Address.Key()].Headers; len(h) != 0 {
		t.Errorf("a raw stash without a content type has headers %v", h)
	}

	r, err := e.Retrieve(ctx, "nats://py/py."+sha(fromPy))
	if err != nil || !bytes.Equal(r.Data, fromPy) {
		t.Fatalf("Retrieve of what python put: %v", err)
	}
	if _, err := e.Retrieve(ctx, "nats://py/wrong."+sha(raw)); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Retrieve of what python put under the wrong digest: %v, want stash.ErrIntegrity", err)
	}
}
