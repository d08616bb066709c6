package natsstash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// The tests in this file run the NATS CLI (`nats`, which `make tools`
// builds) against an embedded nats-server with JetStream: what natsstash
// writes is listed, described and downloaded by `nats object`, and what a
// user puts with `nats object put` under the documented layout (bucket
// claimstash_<namespace>, object [scopes/]name.<sha256>) is read by the
// engine.

// natsCLI is a nats command against one server.
type natsCLI struct {
	t   *testing.T
	bin string
	env []string
}

func newNATSCLI(t *testing.T, srv *natstest.Server) *natsCLI {
	t.Helper()
	return &natsCLI{t: t, bin: clitool.NATS(t), env: clitool.NATSEnv(t, srv.URL())}
}

func (n *natsCLI) run(args ...string) string {
	n.t.Helper()
	return string(clitool.Run(n.t, context.Background(), n.env, nil, n.bin, append([]string{"--no-context"}, args...)...))
}

func sha(p []byte) string { s := sha256.Sum256(p); return hex.EncodeToString(s[:]) }

// halfCompressible is n bytes of 2 KiB random blocks each repeated once.
func halfCompressible(n int, seed uint64) []byte {
	r := stashtest.RandomPayload((n+1)/2, seed)
	out := make([]byte, 0, n+4096)
	for len(r) > 0 {
		b := r[:min(2048, len(r))]
		r = r[len(b):]
		out = append(append(out, b...), b...)
	}
	return out[:n]
}

func unzstd(t *testing.T, p []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := d.DecodeAll(p, nil)
	if err != nil {
		t.Fatalf("the stored bytes are not zstd: %v", err)
	}
	return out
}

// TestNATSCLIReadsStashes: `nats object ls` lists the namespace's bucket and
// the stash keys in it, `nats object get` downloads the stored bytes
// byte-exact (the payload, or its zstd frame for a compressed stash),
// `nats object info` shows the object store's SHA-256 of them (the address
// digest for a stash stored as given), the Content-Type and
// Content-Encoding headers and the claimstash-attributes metadata entry, and the object's info read raw from its stream with
// `nats stream get` holds the attributes in full: digest, sizes, encoding,
// content type and the caller's metadata.
func TestNATSCLIReadsStashes(t *testing.T) {
	srv := natstest.Start(t)
	cli := newNATSCLI(t, srv)
	st, err := natsstash.New(srv.JetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithInlineMax(-1), stash.WithNamespace("orders"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bucket := st.BucketName("orders")
	if bucket != "claimstash_orders" {
		t.Fatalf("bucket %q, want the documented claimstash_orders", bucket)
	}
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
		comp stash.Compression
		opts []stash.CreateOption
	}{
		{"raw", stashtest.RandomPayload(300<<10, 51), stash.CompressionNone, nil}, // three chunks
		{"zstd", halfCompressible(400<<10, 52), stash.CompressionZstd, nil},
		{"scoped", []byte(strings.Repeat("a scoped stash with metadata\n", 200)), stash.CompressionNone,
			[]stash.CreateOption{stash.InScopes(stash.Scope{Key: "org", Value: "42"}), stash.ContentType("text/plain"),
				stash.Metadata(map[string]string{"team": "interop"})}},
	}
	stashes := map[string]*stash.Stash{}
	for _, c := range cases {
		s, err := e.Create(ctx, c.name, c.data, append([]stash.CreateOption{stash.Compress(c.comp)}, c.opts...)...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (s.Encoding == driver.EncodingZstd) != (c.comp == stash.CompressionZstd) {
			t.Fatalf("%s: encoding %q", c.name, s.Encoding)
		}
		stashes[c.name] = s
	}

	if out := cli.run("object", "ls"); !strings.Contains(out, bucket) || !strings.Contains(out, "claimstash namespace orders") {
		t.Errorf("nats object ls does not show bucket %s:\n%s", bucket, out)
	}
	listing := cli.run("object", "ls", bucket)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stashes[c.name]
			key := s.Address.Key()
			if want := c.name + "." + sha(c.data); !strings.HasSuffix(key, want) {
				t.Fatalf("object name %q, want [scopes/]%s", key, want)
			}
			if !strings.Contains(listing, " "+key+" ") {
				t.Errorf("nats object ls %s does not list %s:\n%s", bucket, key, listing)
			}
			out := filepath.Join(dir, c.name)
			cli.run("object", "get", "--force", "--no-progress", "-O", out, bucket, key)
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(raw)) != s.StoredSize {
				t.Fatalf("nats object get wrote %d bytes, stored %d", len(raw), s.StoredSize)
			}
			got := raw
			if c.comp == stash.CompressionZstd {
				got = unzstd(t, raw)
			}
			if !bytes.Equal(got, c.data) {
				t.Fatal("nats object get: the payload differs")
			}

			info := cli.run("object", "info", bucket, key)
			if !regexp.MustCompile(`Digest: SHA-256 ` + sha(raw) + `\b`).MatchString(info) {
				t.Errorf("nats object info does not show the SHA-256 of the stored bytes %s:\n%s", sha(raw), info)
			}
			if c.comp == stash.CompressionNone && sha(raw) != s.Address.Digest {
				t.Errorf("a stash stored as given: the object store's digest is not the address digest")
			}
			wantHeaders := map[string]string{}
			if s.ContentType != "" {
				wantHeaders["Content-Type"] = s.ContentType
			}
			if c.comp == stash.CompressionZstd {
				wantHeaders["Content-Encoding"] = "zstd"
			}
			for k, v := range wantHeaders {
				if !regexp.MustCompile(`(?m)(Headers: |^\s+)` + regexp.QuoteMeta(k+": "+v) + `$`).MatchString(info) {
					t.Errorf("nats object info does not show the header %s: %s:\n%s", k, v, info)
				}
			}
			if len(wantHeaders) == 0 && strings.Contains(info, "Headers:") {
				t.Errorf("nats object info shows headers on a raw stash without a content type:\n%s", info)
			}
			if !strings.Contains(info, natsstash.MetadataKey+`: {"size":`) {
				t.Errorf("nats object info does not show the %s metadata:\n%s", natsstash.MetadataKey, info)
			}

			// The object's info, raw from the stream: the full attributes.
			metaSubject := "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(key))
			var msg struct {
				Data []byte `json:"data"`
			}
			if err := json.Unmarshal([]byte(cli.run("stream", "get", "OBJ_"+bucket, "--last-for", metaSubject, "--json")), &msg); err != nil {
				t.Fatalf("nats stream get: %v", err)
			}
			var oi struct {
				Name     string            `json:"name"`
				Size     int64             `json:"size"`
				Digest   string            `json:"digest"`
				Metadata map[string]string `json:"metadata"`
			}
			if err := json.Unmarshal(msg.Data, &oi); err != nil {
				t.Fatalf("object info %q: %v", msg.Data, err)
			}
			var a driver.Attributes
			if err := json.Unmarshal([]byte(oi.Metadata[natsstash.MetadataKey]), &a); err != nil {
				t.Fatalf("%s %q: %v", natsstash.MetadataKey, oi.Metadata[natsstash.MetadataKey], err)
			}
			if oi.Name != key || oi.Size != s.StoredSize || a.Digest != s.Address.Digest || a.Size != int64(len(c.data)) ||
				a.StoredSize != s.StoredSize || a.Encoding != s.Encoding || a.ContentType != s.ContentType {
				t.Errorf("object info %+v, attributes %+v; stash %+v", oi, a, s)
			}
			if c.name == "scoped" && a.Metadata["team"] != "interop" {
				t.Errorf("the caller's metadata is not in the attributes: %+v", a.Metadata)
			}
			if (c.comp == stash.CompressionZstd) != (a.Encoding == driver.EncodingZstd) {
				t.Errorf("attributes say encoding %q", a.Encoding)
			}
		})
	}
}

// TestNATSCLIPutsRead: objects a user puts with `nats object put` into a
// bucket made with `nats object add`, named as the layout says, are read
// by the engine (Retrieve, Open, Stat) and verified; one put under the wrong
// digest, or truncated, is stash.ErrIntegrity and yields nothing.
func TestNATSCLIPutsRead(t *testing.T) {
	srv := natstest.Start(t)
	cli := newNATSCLI(t, srv)
	st, err := natsstash.New(srv.JetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(st), stash.WithInlineMax(-1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cli.run("object", "add", "claimstash_uploads", "--replicas", "1", "--storage", "file")
	dir := t.TempDir()
	put := func(name string, data []byte) string {
		t.Helper()
		f := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cli.run("object", "put", "--force", "--no-progress", "--name", name, "claimstash_uploads", f)
		return "nats://uploads/" + name
	}
	big := stashtest.RandomPayload(1<<20+3, 61) // several chunks, over max_payload
	scoped := []byte("put by hand with the nats CLI\n")
	for _, c := range []struct {
		name, addr string
		data       []byte
	}{
		{"big", put("by-hand."+sha(big), big), big},
		{"scoped", put("org=42/project=7/note.txt."+sha(scoped), scoped), scoped},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.Retrieve(ctx, c.addr)
			if err != nil || !bytes.Equal(got.Data, c.data) {
				t.Fatalf("Retrieve %s: %v", c.addr, err)
			}
			if s, err := e.Stat(ctx, c.addr); err != nil || s.Size != int64(len(c.data)) {
				t.Fatalf("Stat %s: %+v %v", c.addr, s, err)
			}
			r, err := e.Open(ctx, c.addr)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_, err = b.ReadFrom(r)
			r.Close()
			if err != nil || !bytes.Equal(b.Bytes(), c.data) {
				t.Fatalf("Open %s: %v", c.addr, err)
			}
		})
	}
	for _, c := range []struct{ name, addr string }{
		{"wrong digest", put("wrong."+sha(scoped), big)},
		{"truncated", put("cut."+sha(big), big[:len(big)/2])},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, err := e.Retrieve(ctx, c.addr); !errors.Is(err, stash.ErrIntegrity) || got != nil {
				t.Fatalf("Retrieve: %v, %v; want stash.ErrIntegrity and nothing", got, err)
			}
			r, err := e.Open(ctx, c.addr)
			if err == nil {
				var b bytes.Buffer
				_, err = b.ReadFrom(r)
				r.Close()
			}
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Fatalf("Open: %v, want stash.ErrIntegrity before EOF", err)
			}
		})
	}
}
