package kstash

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// s3Peer does, with boto3 and msgpack-python, what kstash 0.2 does on S3
// (kstash itself needs Python 3.13): create puts msgpack(value) under
// <name>.<md5> in the namespace's bucket with IfNoneMatch="*", retrieve
// gets it and unpacks it (and here also checks the md5), share presigns a
// GET. Each command reads its JSON argument and prints JSON.
const s3Peer = `
import hashlib, json, re, sys, urllib.error, urllib.request
import boto3, msgpack
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
ADDR = re.compile(r"s3://([a-z0-9-]+)/([A-Za-z0-9_.-]+)\.([0-9a-f]{32})")

def nest(n):
    x = None
    for _ in range(n):
        x = [x]
    return x

def create(name, ns, value):
    enc = msgpack.packb(value)
    key = f"{name}.{hashlib.md5(enc).hexdigest()}"
    try:
        s3.put_object(Bucket=ns, Key=key, Body=enc, IfNoneMatch="*")
        status = "written"
    except ClientError as e:
        if e.response["Error"]["Code"] != "PreconditionFailed":
            raise
        status = "exists"
    return {"address": f"s3://{ns}/{key}", "status": status}

def retrieve(address):
    ns, name, md5 = ADDR.fullmatch(address).groups()
    obj = s3.get_object(Bucket=ns, Key=f"{name}.{md5}")
    body = obj["Body"].read()
    return body, hashlib.md5(body).hexdigest() == md5, obj

cmd, arg = sys.argv[1], json.loads(sys.argv[2])
out = []
if cmd == "create":
    for name, ns, expr in arg:
        out.append(create(name, ns, eval(expr)))
elif cmd == "tamper":
    for name, ns, expr, other in arg:
        key = f"{name}.{hashlib.md5(msgpack.packb(eval(expr))).hexdigest()}"
        s3.put_object(Bucket=ns, Key=key, Body=msgpack.packb(eval(other)), IfNoneMatch="*")
        out.append(f"s3://{ns}/{key}")
elif cmd == "retrieve":
    for address, expr in arg:
        body, md5_ok, obj = retrieve(address)
        out.append({"same": msgpack.unpackb(body) == eval(expr), "md5_ok": md5_ok, "size": len(body),
                    "encoding": obj.get("ContentEncoding", "")})
elif cmd == "fetch":
    for link, expr in arg:
        path = urllib.parse.urlsplit(link).path
        body = urllib.request.urlopen(link).read()
        md5 = path.rsplit(".", 1)[1]
        out.append({"same": msgpack.unpackb(body) == eval(expr), "md5_ok": hashlib.md5(body).hexdigest() == md5})
elif cmd == "share":
    for address in arg:
        ns, name, md5 = ADDR.fullmatch(address).groups()
        out.append(s3.generate_presigned_url("get_object", Params={"Bucket": ns, "Key": f"{name}.{md5}"}, ExpiresIn=300))
elif cmd == "share_key":
    for ns, key, ttl in arg:
        out.append(s3.generate_presigned_url("get_object", Params={"Bucket": ns, "Key": key}, ExpiresIn=ttl))
elif cmd == "put_key":
    for ns, key, expr in arg:
        s3.put_object(Bucket=ns, Key=key, Body=msgpack.packb(eval(expr)))
elif cmd == "status":
    for link in arg:
        try:
            out.append(urllib.request.urlopen(link).status)
        except urllib.error.HTTPError as e:
            out.append(e.code)
elif cmd == "produce":
    stash = create("context", "stashes", {"as_of": "today", "bin": b"0" * 524288})
    out = {"context": stash["address"], "command": "gen_report"}
elif cmd == "consume":
    msg = json.loads(arg)
    body, md5_ok, _ = retrieve(msg["context"])
    ctx = msgpack.unpackb(body)
    out = {"command": msg["command"], "md5_ok": md5_ok, "as_of": ctx["as_of"], "bin": ctx["bin"] == b"\x01" * 300000,
           "keys": list(ctx)}
json.dump(out, sys.stdout)
`

type s3Env struct {
	srv    *miniotest.Server
	store  *Store
	engine *stash.Engine
	script string
	env    []string
}

func (e *s3Env) py(t *testing.T, cmd string, arg, out any) {
	t.Helper()
	a, err := json.Marshal(arg)
	if err != nil {
		t.Fatal(err)
	}
	b := pypeer.Run(t, context.Background(), e.env, e.script, cmd, string(a))
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("python %s: %v: %s", cmd, err, b)
	}
}

func startS3(t *testing.T) *s3Env {
	t.Helper()
	pypeer.Python(t)
	srv := miniotest.Start(t, "stashes", "default")
	drv, err := s3stash.New(srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := stash.New(stash.WithBackend(drv), trustLinks(t, srv.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(eng, WithNamespace("stashes"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "kstash_peer.py")
	if err := os.WriteFile(script, []byte(s3Peer), 0o600); err != nil {
		t.Fatal(err)
	}
	return &s3Env{srv: srv, store: st, engine: eng, script: script, env: []string{
		"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey,
		"AWS_DEFAULT_REGION=" + miniotest.Region, "AWS_ENDPOINT_URL=" + srv.Endpoint,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}}
}

type pyRead struct {
	Same     bool   `json:"same"`
	MD5OK    bool   `json:"md5_ok"`
	Size     int    `json:"size"`
	Encoding string `json:"encoding"`
}

// s3Values are stored in S3 by one side and read by the other.
var s3Values = []pyCase{
	{`{"as_of": "today", "bin": b"0" * 524288}`, Map{{"as_of", "today"}, {"bin", bytes.Repeat([]byte("0"), 524288)}}},
	{`"ünïcødé ✓ 𝄞"`, "ünïcødé ✓ 𝄞"},
	{`{"k": {"n": [1, {"x": b"y"}], "é": -1.25}, "neg": -2**63, "big": 2**64 - 1, "e": [], "m": {}}`,
		Map{{"k", Map{{"n", []any{1, Map{{"x", []byte("y")}}}}, {"é", -1.25}}}, {"neg", int64(-1 << 63)}, {"big", uint64(1<<64 - 1)}, {"e", []any{}}, {"m", Map{}}}},
	{`b"\x07" * 70000`, bytes.Repeat([]byte{7}, 70000)},
	{"None", nil},
	{"nest(200)", nested(200)},
}

// TestS3 exchanges stashes with boto3 and msgpack-python through a real
// MinIO: kstash's S3 layout in both directions, its share links both ways,
// and the pipeline recipe with Python on the other end.
func TestS3(t *testing.T) {
	e := startS3(t)
	ctx := context.Background()

	t.Run("Layout", func(t *testing.T) {
		for _, o := range []s3stash.Option{s3stash.WithPrefix("kstash/"), s3stash.WithBucket("stashes")} {
			d, err := s3stash.New(e.srv.Client(), o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := New(mustEngine(t, stash.WithBackend(d))); err == nil {
				t.Errorf("an s3stash store with %T accepted: kstash's layout is bucket = namespace", o)
			}
		}
	})

	t.Run("GoWritesPythonReads", func(t *testing.T) {
		var args [][2]string
		for i, c := range s3Values {
			st, err := e.store.Create(ctx, "go"+string(rune('a'+i)), c.v, NoInline())
			if err != nil {
				t.Fatal(err)
			}
			args = append(args, [2]string{st.String(), c.expr})
		}
		ctxStash, err := e.store.Create(ctx, "context", s3Values[0].v)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ctxStash.String(), "s3://stashes/context.c6ab205fe81dcad3eec3ab48b96b0618"; got != want {
			t.Fatalf("README vector: %s, want %s", got, want)
		}
		args = append(args, [2]string{ctxStash.String(), s3Values[0].expr})
		var reads []pyRead
		e.py(t, "retrieve", args, &reads)
		for i, r := range reads {
			if !r.Same || !r.MD5OK || r.Encoding != "" {
				t.Errorf("%s: python read %+v", args[i][0], r)
			}
		}
		if last := reads[len(reads)-1]; last.Size != 524310 {
			t.Errorf("context object holds %d bytes, want msgpack's 524310", last.Size)
		}
		// kstash creating the same value finds it there and does not overwrite it.
		var made []struct{ Address, Status string }
		e.py(t, "create", [][3]string{{"context", "stashes", s3Values[0].expr}}, &made)
		if made[0].Address != ctxStash.String() || made[0].Status != "exists" {
			t.Errorf("python create of the same value: %+v", made[0])
		}
	})

	t.Run("PythonWritesGoReads", func(t *testing.T) {
		var args [][3]string
		for i, c := range s3Values {
			args = append(args, [3]string{"py" + string(rune('a'+i)), "stashes", c.expr})
		}
		var made []struct{ Address, Status string }
		e.py(t, "create", args, &made)
		for i, m := range made {
			if m.Status != "written" {
				t.Fatalf("python create %s: %s", m.Address, m.Status)
			}
			got, err := e.store.Retrieve(ctx, m.Address)
			if err != nil {
				t.Fatalf("Retrieve(%s): %v", m.Address, err)
			}
			if want := normalize(s3Values[i].v); !equalValues(got.Value, want) {
				t.Errorf("%s: %#.80v, want %#.80v", m.Address, got.Value, want)
			}
			if got.MD5() != got.Address.Digest {
				t.Errorf("%s: md5 %s", m.Address, got.MD5())
			}
			// Creating it from Go finds the object and leaves it as Python wrote it.
			again, err := e.store.Create(ctx, args[i][0], s3Values[i].v, NoInline())
			if err != nil || again.String() != m.Address {
				t.Errorf("Go create of %s: %v, %v", m.Address, again, err)
			}
			a, _ := ParseAddress(m.Address)
			head, err := e.srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("stashes"), Key: aws.String(a.Key())})
			if err != nil {
				t.Fatal(err)
			}
			if _, ours := head.Metadata["claimstash"]; ours {
				t.Errorf("%s was overwritten by Go's create", m.Address)
			}
		}
	})

	t.Run("Tampered", func(t *testing.T) {
		var addrs []string
		e.py(t, "tamper", [][4]string{{"forged", "stashes", `{"amount": 10}`, `{"amount": 10000}`}}, &addrs)
		_, err := e.store.Retrieve(ctx, addrs[0])
		if !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve of bytes that are not their md5: %v, want ErrIntegrity", err)
		}
		if _, err := e.store.Create(ctx, "forged", Map{{"amount", 10}}, NoInline()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Create over other bytes: %v, want ErrIntegrity", err)
		}
		if _, err := e.store.Retrieve(ctx, "s3://stashes/absent.266f01c5105567ba27fece1c0383227f"); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("missing: %v, want ErrNotFound", err)
		}
	})

	t.Run("ShareLinks", func(t *testing.T) {
		st, err := e.store.Create(ctx, "shared", s3Values[2].v, NoInline())
		if err != nil {
			t.Fatal(err)
		}
		link, err := e.store.Share(ctx, st.String(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(link)
		if u.Fragment != "" || strings.Contains(link, "#") || u.Path != "/stashes/"+st.Address.Key() || u.Query().Get("X-Amz-Signature") == "" {
			t.Fatalf("share link %s: want a plain presigned GET of /stashes/%s", link, st.Address.Key())
		}
		var fetched []pyRead
		e.py(t, "fetch", [][2]string{{link, s3Values[2].expr}}, &fetched)
		if !fetched[0].Same || !fetched[0].MD5OK {
			t.Errorf("python fetch of the Go link: %+v", fetched[0])
		}
		got, err := e.store.Retrieve(ctx, link)
		if err != nil || !equalValues(got.Value, normalize(s3Values[2].v)) {
			t.Errorf("Retrieve of the Go link: %v, %v", got, err)
		}

		// A link boto3 presigned, for an object boto3 wrote.
		var made []struct{ Address, Status string }
		e.py(t, "create", [][3]string{{"pyshared", "stashes", s3Values[1].expr}}, &made)
		var links []string
		e.py(t, "share", []string{made[0].Address}, &links)
		got, err = e.store.Retrieve(ctx, links[0])
		if err != nil || got.Value != s3Values[1].v || got.Address.Key() != strings.TrimPrefix(made[0].Address, "s3://stashes/") {
			t.Errorf("Retrieve of the boto3 link: %v, %v", got, err)
		}

		// A forged signature is refused by S3; an untrusted origin before any request.
		q := u.Query()
		sig := q.Get("X-Amz-Signature")
		q.Set("X-Amz-Signature", strings.Repeat("0", len(sig)))
		u.RawQuery = q.Encode()
		if _, err := e.store.Retrieve(ctx, u.String()); !errors.Is(err, stash.ErrForbidden) {
			t.Errorf("forged signature: %v, want ErrForbidden", err)
		}
		other, err := New(mustEngine(t, stash.WithInlineMax(100)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Retrieve(ctx, link); !errors.Is(err, stash.ErrForbidden) {
			t.Errorf("untrusted origin: %v, want ErrForbidden", err)
		}
		if _, err := e.store.Share(ctx, "s3://stashes/absent.266f01c5105567ba27fece1c0383227f", time.Minute); !errors.Is(err, stash.ErrNotFound) {
			t.Errorf("share of a missing stash: %v, want ErrNotFound", err)
		}
	})

	// Links that must not read as a stash: expired ones (each side's, at the
	// other side), links for keys that are not kstash stashes, for missing
	// and for tampered objects, and one whose path was moved to another key.
	t.Run("LinkEdges", func(t *testing.T) {
		st, err := e.store.Create(ctx, "edges", s3Values[1].v, NoInline())
		if err != nil {
			t.Fatal(err)
		}
		var tampered []string
		e.py(t, "tamper", [][4]string{{"edgeforged", "stashes", `{"amount": 10}`, `{"amount": 10000}`}}, &tampered)
		e.py(t, "put_key", [][3]string{{"stashes", "notes.txt", `"x"`}, {"stashes", "edges." + strings.Repeat("0", 31) + "g", `"x"`}}, &[]any{})
		var links []string
		e.py(t, "share_key", [][3]any{
			{"stashes", st.Address.Key(), 1},
			{"stashes", "notes.txt", 300},
			{"stashes", "edges." + strings.Repeat("0", 31) + "g", 300},
			{"stashes", "absent.266f01c5105567ba27fece1c0383227f", 300},
			{"stashes", strings.TrimPrefix(tampered[0], "s3://stashes/"), 300},
			{"stashes", st.Address.Key(), 300},
		}, &links)
		goLink, err := e.store.Share(ctx, st.String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		moved := strings.Replace(links[5], "/"+st.Address.Key(), "/"+strings.TrimPrefix(tampered[0], "s3://stashes/"), 1)
		for _, c := range []struct {
			name, link string
			want       error
		}{
			{"boto3 link for a key that is not name.md5", links[1], stash.ErrInvalidAddress},
			{"boto3 link for a key whose digest is not hex", links[2], stash.ErrInvalidAddress},
			{"boto3 link for a missing stash", links[3], stash.ErrNotFound},
			{"boto3 link for a tampered stash", links[4], stash.ErrIntegrity},
			{"boto3 link moved to another key", moved, stash.ErrForbidden},
		} {
			got, err := e.store.Retrieve(ctx, c.link)
			if !errors.Is(err, c.want) {
				t.Errorf("%s: Retrieve = %v, %v; want %v", c.name, got, err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "Signature=") {
				t.Errorf("%s: error shows the signature: %v", c.name, err)
			}
		}
		time.Sleep(2100 * time.Millisecond)
		if got, err := e.store.Retrieve(ctx, links[0]); !errors.Is(err, stash.ErrExpired) {
			t.Errorf("expired boto3 link: Retrieve = %v, %v; want ErrExpired", got, err)
		}
		var status []int
		e.py(t, "status", []string{goLink, links[5]}, &status)
		if status[0] != 403 || status[1] != 200 {
			t.Errorf("python fetch of the expired Go link: HTTP %d (and of a live boto3 link %d); want 403 (and 200)", status[0], status[1])
		}
		if got, err := e.store.Retrieve(ctx, goLink); !errors.Is(err, stash.ErrExpired) {
			t.Errorf("expired Go link: Retrieve = %v, %v; want ErrExpired", got, err)
		}
	})

	// An object under a kstash key that a claimstash writer stored
	// zstd-compressed, with its attributes: Go reads the value through the
	// engine, but a kstash reader gets the compressed bytes, so Create does
	// not hand out its address.
	t.Run("CompressedObject", func(t *testing.T) {
		v := bytes.Repeat([]byte{7}, 70000)
		enc, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		zw, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		z := zw.EncodeAll(enc, nil)
		key := "squeezed." + md5Hex(enc)
		attrs, _ := json.Marshal(driver.Attributes{Size: int64(len(enc)), StoredSize: int64(len(z)), Encoding: driver.EncodingZstd, Digest: md5Hex(enc), Created: time.Now().UTC()})
		if _, err := e.srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("stashes"), Key: aws.String(key), Body: bytes.NewReader(z), Metadata: map[string]string{"claimstash": string(attrs)}}); err != nil {
			t.Fatal(err)
		}
		got, err := e.store.Retrieve(ctx, "s3://stashes/"+key)
		if err != nil || !bytes.Equal(got.Value.([]byte), v) {
			t.Errorf("Retrieve of the compressed object: %v, %v", got, err)
		}
		if st, err := e.store.Create(ctx, "squeezed", v, NoInline()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Create over the compressed object: %v, %v; want ErrIntegrity", st, err)
		}

		// gzip with Content-Encoding, as an HTTP upload may arrive: neither
		// boto3 nor the Go SDK undoes it, so the bytes are not the md5's.
		var gz bytes.Buffer
		zw2 := gzip.NewWriter(&gz)
		zw2.Write(enc)
		zw2.Close()
		gzKey := "gzipped." + md5Hex(enc)
		if _, err := e.srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("stashes"), Key: aws.String(gzKey), Body: bytes.NewReader(gz.Bytes()), ContentEncoding: aws.String("gzip")}); err != nil {
			t.Fatal(err)
		}
		if got, err := e.store.Retrieve(ctx, "s3://stashes/"+gzKey); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Retrieve of a gzip-encoded object: %v, %v; want ErrIntegrity", got, err)
		}
		if st, err := e.store.Create(ctx, "gzipped", v, NoInline()); !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("Create over the gzip-encoded object: %v, %v; want ErrIntegrity", st, err)
		}
	})

	t.Run("Pipeline", func(t *testing.T) {
		// Python produces, Go consumes.
		var msg struct{ Context, Command string }
		e.py(t, "produce", nil, &msg)
		got, err := e.store.Retrieve(ctx, msg.Context)
		if err != nil {
			t.Fatal(err)
		}
		m := got.Value.(Map)
		asOf, _ := m.Get("as_of")
		bin, _ := m.Get("bin")
		if msg.Command != "gen_report" || asOf != "today" || !bytes.Equal(bin.([]byte), bytes.Repeat([]byte("0"), 524288)) {
			t.Errorf("Go consumer got %s, %v, %d bytes", msg.Command, asOf, len(bin.([]byte)))
		}

		// Go produces, Python consumes.
		st, err := e.store.Create(ctx, "report", Map{{"as_of", "tomorrow"}, {"bin", bytes.Repeat([]byte{1}, 300000)}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"context": st.String(), "command": "gen_report"})
		var res struct {
			Command string   `json:"command"`
			MD5OK   bool     `json:"md5_ok"`
			AsOf    string   `json:"as_of"`
			Bin     bool     `json:"bin"`
			Keys    []string `json:"keys"`
		}
		e.py(t, "consume", string(body), &res)
		if res.Command != "gen_report" || !res.MD5OK || res.AsOf != "tomorrow" || !res.Bin || strings.Join(res.Keys, ",") != "as_of,bin" {
			t.Errorf("Python consumer got %+v", res)
		}
	})
}
