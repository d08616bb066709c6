package natsstash_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/natsstash"
)

// rewriteMeta republishes the object store's own record of key (its
// ObjectInfo: size, chunks, digest, our attributes) after edit, as anyone
// allowed to publish on the bucket's metadata subjects can. The chunks
// stay as they are.
func rewriteMeta(t *testing.T, ctx context.Context, js jetstream.JetStream, bucket, key string, edit func(info map[string]any, attrs *driver.Attributes)) {
	t.Helper()
	stream, err := js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	subj := "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(key))
	m, err := stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	meta := info["metadata"].(map[string]any)
	var a driver.Attributes
	if err := json.Unmarshal([]byte(meta[natsstash.MetadataKey].(string)), &a); err != nil {
		t.Fatal(err)
	}
	edit(info, &a)
	ab, _ := json.Marshal(&a)
	meta[natsstash.MetadataKey] = string(ab)
	data, _ := json.Marshal(info)
	msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	msg.Header.Set("Nats-Rollup", "sub")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// The object store's record of an object is a message anyone allowed on
// the bucket's subjects can rewrite: one that claims 1 GiB for an object
// of 100 KiB, in its size and in our attributes alike, must not make a read
// allocate 1 GiB before the bytes run out.
func TestRewrittenObjectInfoBoundsAllocation(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	for _, c := range []struct {
		name    string
		payload []byte
	}{
		{"identity", randomBytes(t, 100<<10)},
		{"zstd", bytes.Repeat([]byte("compressible claim-check payload "), 3000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := f.eng.Create(ctx, "lying-"+c.name, c.payload)
			if err != nil {
				t.Fatal(err)
			}
			rewriteMeta(t, ctx, f.js, f.store.BucketName(s.Address.Namespace), s.Address.Key(), func(info map[string]any, a *driver.Attributes) {
				const claim = 1 << 30
				info["size"] = claim
				a.StoredSize = claim
				if a.Encoding == driver.EncodingIdentity {
					a.Size = claim
				}
			})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			got, err := f.eng.Retrieve(ctx, s.String())
			runtime.ReadMemStats(&after)
			switch {
			case err == nil && bytes.Equal(got.Data, c.payload):
				// Compressed: the decoded bytes are the payload, verified.
			case got != nil || !errors.Is(err, stash.ErrIntegrity):
				t.Errorf("Retrieve of an object whose record lies: %v, %v; want ErrIntegrity", got != nil, err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
				t.Errorf("Retrieve allocated %d MiB for an object of %d KiB; want at most 32 MiB", n>>20, len(c.payload)>>10)
			}
		})
	}
}

// A rewritten record whose digest, chunk count or size no longer matches
// the chunks gives the payload (verified) or a typed error, never other
// bytes.
func TestRewrittenObjectInfoRefused(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	for _, c := range []struct {
		name string
		edit func(info map[string]any, a *driver.Attributes)
	}{
		{"digest", func(info map[string]any, _ *driver.Attributes) {
			info["digest"] = "SHA-256=" + base64.URLEncoding.EncodeToString(make([]byte, 32))
		}},
		{"digest-malformed", func(info map[string]any, _ *driver.Attributes) { info["digest"] = "md5=xyz" }},
		{"chunks-more", func(info map[string]any, _ *driver.Attributes) { info["chunks"] = info["chunks"].(float64) + 5 }},
		{"chunks-fewer", func(info map[string]any, _ *driver.Attributes) { info["chunks"] = info["chunks"].(float64) - 1 }},
		{"size-smaller", func(info map[string]any, a *driver.Attributes) {
			info["size"] = info["size"].(float64) - 1
			a.StoredSize--
			a.Size--
		}},
		{"attributes-size-only", func(_ map[string]any, a *driver.Attributes) { a.StoredSize++; a.Size++ }},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := randomBytes(t, 300<<10)
			s, err := f.eng.Create(ctx, "rewritten-"+c.name, payload)
			if err != nil {
				t.Fatal(err)
			}
			rewriteMeta(t, ctx, f.js, f.store.BucketName(s.Address.Namespace), s.Address.Key(), c.edit)
			got, err := f.eng.Retrieve(ctx, s.String())
			switch {
			case err == nil && bytes.Equal(got.Data, payload):
				// The record lies about nothing the read relies on.
			case got != nil || !errors.Is(err, stash.ErrIntegrity):
				t.Errorf("Retrieve: %v, %v; want the payload or ErrIntegrity", got != nil, err)
			}
			r, err := f.eng.Open(ctx, s.String())
			if err != nil {
				if !errors.Is(err, stash.ErrIntegrity) {
					t.Errorf("Open: %v; want ErrIntegrity", err)
				}
				return
			}
			defer r.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(r); err != nil && !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("reading: %v; want ErrIntegrity", err)
			} else if err == nil && !bytes.Equal(buf.Bytes(), payload) {
				t.Errorf("reading reached a clean end with %d bytes that are not the payload", buf.Len())
			}
		})
	}
}

// An object over the size Get trusts without counting its chunks, with a
// true record, reads back whole: the count backs it.
func TestLargeObjectSizeBacked(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	payload := randomBytes(t, 9<<20)
	s, err := f.eng.Create(ctx, "large", payload)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.eng.Retrieve(ctx, s.String())
	if err != nil || !bytes.Equal(got.Data, payload) {
		t.Fatalf("Retrieve of a 9 MiB object: %v", err)
	}
}

// BenchmarkSizeBackedCost: what counting the chunks of an object over
// Get's trusted size adds to a Retrieve of it. Each iteration retrieves a
// 16 MiB stash (which makes that request) and, interleaved, makes the
// request alone; "x-retrieve" is the request's time as a fraction of the
// Retrieve's (the median of per-iteration ratios).
func BenchmarkSizeBackedCost(b *testing.B) {
	ctx := context.Background()
	srv := natstest.Start(b)
	js := srv.JetStream(b)
	s, err := natsstash.New(js)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	e, err := stash.New(stash.WithBackend(s))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 16<<20)
	_, _ = rand.Read(payload)
	st, err := e.Create(ctx, "large", payload)
	if err != nil {
		b.Fatal(err)
	}
	bucket := s.BucketName(st.Address.Namespace)
	stream, err := js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		b.Fatal(err)
	}
	subj := "$O." + bucket + ".C.>"
	var ratios []float64
	for b.Loop() {
		t0 := time.Now()
		if _, err := e.Retrieve(ctx, st.String()); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := stream.Info(ctx, jetstream.WithSubjectFilter(subj)); err != nil {
			b.Fatal(err)
		}
		ratios = append(ratios, float64(time.Since(t1))/float64(t1.Sub(t0)))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "x-retrieve")
}

// A rewritten record that Get refuses before reading (a digest the client
// cannot check, a size its chunks cannot hold) is refused by Stat too, so
// that a Create of the same content fails instead of reporting a stash
// that no read serves.
func TestRewrittenObjectInfoStatAsGet(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	for _, c := range []struct {
		name string
		edit func(info map[string]any, a *driver.Attributes)
	}{
		{"digest-malformed", func(info map[string]any, _ *driver.Attributes) { info["digest"] = "md5=xyz" }},
		{"size-beyond-chunks", func(info map[string]any, a *driver.Attributes) {
			const claim = 1 << 30
			info["size"] = claim
			a.StoredSize, a.Size = claim, claim
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			payload := randomBytes(t, 100<<10)
			s, err := f.eng.Create(ctx, "stat-as-get-"+c.name, payload)
			if err != nil {
				t.Fatal(err)
			}
			ns, key := s.Address.Namespace, s.Address.Key()
			rewriteMeta(t, ctx, f.js, f.store.BucketName(ns), key, c.edit)
			if _, _, err := f.store.Get(ctx, ns, key); !errors.Is(err, stash.ErrIntegrity) {
				t.Fatalf("Get: %v, want ErrIntegrity", err)
			}
			if _, err := f.store.Stat(ctx, ns, key); !errors.Is(err, stash.ErrIntegrity) {
				t.Fatalf("Stat: %v, want ErrIntegrity, as Get", err)
			}
			if again, err := f.eng.Create(ctx, "stat-as-get-"+c.name, payload); err == nil {
				t.Fatalf("Create over the refused record reported %s written", again.Address)
			}
		})
	}
}

// Attributes in the record that do not decode are ErrIntegrity, with a
// message naming no Go type (encoding/json's would), as is a record that is
// not the object store's JSON at all.
func TestDamagedAttributesNamedPlainly(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t)
	goIdentifiers := regexp.MustCompile(`Go (struct|value)|int64|driver\.|jetstream\.|Attributes|ObjectInfo|map\[`)
	payload := randomBytes(t, 10<<10)
	s, err := f.eng.Create(ctx, "damaged-attributes", payload)
	if err != nil {
		t.Fatal(err)
	}
	ns, key := s.Address.Namespace, s.Address.Key()
	bucket := f.store.BucketName(ns)
	stream, err := f.js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	subj := "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(key))
	republish := func(data []byte) {
		t.Helper()
		msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
		msg.Header.Set("Nats-Rollup", "sub")
		if _, err := f.js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	m, err := stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	info["metadata"].(map[string]any)[natsstash.MetadataKey] = `{"size":"many"}`
	data, _ := json.Marshal(info)
	republish(data)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, stash.ErrIntegrity) {
			t.Fatalf("%s: %v, want ErrIntegrity", what, err)
		}
		if goIdentifiers.MatchString(err.Error()) {
			t.Errorf("%s: %q names Go types", what, err)
		}
	}
	_, err = f.store.Stat(ctx, ns, key)
	check("Stat with undecodable attributes", err)
	_, err = f.store.ModifyAttributes(ctx, ns, key, func(a *driver.Attributes) *driver.Attributes { return a })
	check("ModifyAttributes with undecodable attributes", err)
	// A record that is JSON, but not an object.
	republish([]byte(`["not", "an", "object"]`))
	_, err = f.store.ModifyAttributes(ctx, ns, key, func(a *driver.Attributes) *driver.Attributes { return a })
	check("ModifyAttributes of a record that is no object", err)
	check("UpdateAttributes of a record that is no object", f.store.UpdateAttributes(ctx, ns, key, &driver.Attributes{}))
	_, err = f.store.Stat(ctx, ns, key)
	check("Stat of a record that is no object", err)
	_, _, err = f.store.Get(ctx, ns, key)
	check("Get of a record that is no object", err)
}
