package service_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/natsstash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// TestMultipartBackends: multipart uploads over each driver that serves
// them besides the file driver: memory, S3 (MinIO) and NATS (JetStream),
// each a real server on a loopback socket.
func TestMultipartBackends(t *testing.T) {
	for _, b := range []struct {
		name string
		make func(t *testing.T) driver.Driver
	}{
		{"mem", func(*testing.T) driver.Driver { return memstash.New() }},
		{"s3", func(t *testing.T) driver.Driver {
			srv := miniotest.Start(t, "testing")
			s, err := s3stash.New(srv.Client(), s3stash.WithBuckets("testing"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"nats", func(t *testing.T) driver.Driver {
			srv := natstest.Start(t)
			s, err := natsstash.New(srv.JetStream(t))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			d := b.make(t)
			t.Cleanup(func() { _ = d.Close() })
			ts := serveDriver(t, d)
			c := mpClient{t, ts.URL, "testing/org=42;project=7"}
			big := make([]byte, 3<<20)
			rand.Read(big)
			parts := []string{string(big), "middle", "end"}
			// Twice: the second complete replaces the first's object.
			for round := range 2 {
				up := c.initiate("dir/obj", "x-snme-round", fmt.Sprint(round))
				refs := make([]ref, len(parts))
				for _, i := range []int{2, 0, 1} {
					refs[i] = ref{i + 1, c.part("dir/obj", up.UploadID, i+1, parts[i])}
				}
				if l := c.list("dir/obj", up.UploadID, ""); len(l.Parts) != 3 || l.Parts[0].Size != 3<<20 {
					t.Fatalf("listed %+v", l)
				}
				if res := c.complete("dir/obj", up.UploadID, refs...); res.Error != nil {
					t.Fatalf("complete: %+v", res.Error)
				}
				r := do(t, "GET", ts.URL+"/v1/objects/testing/org=42;project=7/dir/obj", nil)
				wantStatus(t, r, 200)
				if got := readAll(t, r); !bytes.Equal([]byte(got), []byte(parts[0]+parts[1]+parts[2])) || r.Header.Get("x-snme-round") != fmt.Sprint(round) {
					t.Fatalf("round %d: GET gave %d bytes, metadata %v", round, len(got), r.Header)
				}
				wantStatus(t, do(t, "GET", c.url(":multipart:parts", "dir/obj", "upload_id="+up.UploadID), nil), 404)
			}
			up := c.initiate("dir/obj")
			c.part("dir/obj", up.UploadID, 1, "aborted")
			wantStatus(t, c.abort("dir/obj", up.UploadID), 204)
			wantStatus(t, c.putPart("dir/obj", up.UploadID, 2, "late"), 404)
			if got := c.object("dir/obj"); len(got) != 3<<20+len("middleend") {
				t.Fatalf("the object after an abort: %d bytes", len(got))
			}
		})
	}
}
