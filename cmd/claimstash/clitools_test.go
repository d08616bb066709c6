package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/kafkatest"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/natstest"
)

// The tests in this file read, with the command line, what third-party
// clients (the AWS CLI, the NATS CLI, kcat) wrote under the documented
// layouts, the way an operator does by hand.

func hexSum(p []byte) string { s := sha256.Sum256(p); return hex.EncodeToString(s[:]) }

// getChecks runs get -o, stat and inspect of good, and get -o and inspect of
// bad (whose bytes do not match their addresses), which must fail with the
// integrity status and leave no file.
func getChecks(t *testing.T, be string, good map[string][]byte, bad []string) {
	t.Helper()
	dir := t.TempDir()
	for addr, data := range good {
		out := filepath.Join(dir, "got")
		if _, errs, code := cli(t, nil, "get", be, addr, "-o", out); code != 0 {
			t.Fatalf("get %s: exit %d; %s", addr, code, errs)
		}
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %s -o: %d bytes (%v), want %d", addr, len(got), err, len(data))
		}
		var st stashJSON
		if err := json.Unmarshal([]byte(mustCLI(t, nil, "stat", be, addr, "--json")), &st); err != nil || st.Size != int64(len(data)) || st.Digest != hexSum(data) {
			t.Errorf("stat %s: %+v %v", addr, st, err)
		}
		hf, bf := filepath.Join(dir, "h"), filepath.Join(dir, "b")
		_ = os.WriteFile(hf, []byte("claimstash-version: 1\nclaimstash-size: "+strconv.Itoa(len(data))+"\n"), 0o600)
		_ = os.WriteFile(bf, []byte(addr), 0o600)
		if out := mustCLI(t, nil, "inspect", be, "--headers", hf, "--body", bf); !strings.Contains(out, "verified: yes") {
			t.Errorf("inspect of a reference to %s:\n%s", addr, out)
		}
		_ = os.WriteFile(hf, []byte("claimstash-version: 1\nclaimstash-size: "+strconv.Itoa(len(data)+1)+"\n"), 0o600)
		if _, errs, code := cli(t, nil, "inspect", be, "--headers", hf, "--body", bf); code != exitIntegrity {
			t.Errorf("inspect with a lying size: exit %d; %s", code, errs)
		}
		os.Remove(out)
	}
	for _, addr := range bad {
		out := filepath.Join(dir, "bad")
		if _, errs, code := cli(t, nil, "get", be, addr, "-o", out); code != exitIntegrity {
			t.Errorf("get of %s: exit %d, want %d; %s", addr, code, exitIntegrity, errs)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("get of %s left %s behind: %v", addr, out, err)
		}
		if got, _, code := cli(t, nil, "get", be, addr); code != exitIntegrity || got != "" {
			t.Errorf("get of %s to stdout: exit %d, %d bytes written", addr, code, len(got))
		}
	}
}

// TestGetAWSCLIUploads: objects a user uploaded with `aws s3 cp` (single
// part and multipart, scoped) under name.<sha256> in the namespace's bucket
// are read by get, stat and inspect; uploads under the wrong digest, or
// truncated, fail get with the integrity status and write nothing.
func TestGetAWSCLIUploads(t *testing.T) {
	srv := miniotest.Shared(t)
	isolateAWS(t)
	aws := clitool.AWS(t)
	env := clitool.AWSEnv(t, miniotest.AccessKey, miniotest.SecretKey, miniotest.Region)
	srv.CreateBucket(t, "cli-awscli")
	be := "--backend=s3://?region=" + miniotest.Region + "&endpoint=" + srv.Endpoint + "&path_style=true"
	dir := t.TempDir()
	upload := func(key string, data []byte) string {
		f := filepath.Join(dir, "upload")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		clitool.Run(t, context.Background(), env, nil, aws, "--endpoint-url", srv.Endpoint, "s3", "cp", "--only-show-errors", f, "s3://cli-awscli/"+key)
		return "s3://cli-awscli/" + key
	}
	small := randomBytes(100 << 10)
	big := randomBytes(9<<20 + 1) // the CLI uploads it in two parts
	good := map[string][]byte{
		upload("report."+hexSum(small), small):      small,
		upload("org=42/dump.bin."+hexSum(big), big): big,
	}
	bad := []string{
		upload("wrong."+hexSum(small), big[:1000]),
		upload("cut."+hexSum(big), big[:len(big)-1]),
	}
	getChecks(t, be, good, bad)
}

// TestGetNATSCLIPuts: objects a user put with `nats object put` into the
// namespace's bucket (claimstash_<namespace>, made with `nats object add`)
// under name.<sha256> are read by get, stat and inspect; wrong or truncated
// ones fail with the integrity status and write nothing.
func TestGetNATSCLIPuts(t *testing.T) {
	bin := clitool.NATS(t)
	srv := natstest.Start(t)
	env := clitool.NATSEnv(t, srv.URL())
	nats := func(args ...string) {
		clitool.Run(t, context.Background(), env, nil, bin, append([]string{"--no-context"}, args...)...)
	}
	nats("object", "add", "claimstash_default", "--replicas", "1", "--storage", "file")
	dir := t.TempDir()
	put := func(name string, data []byte) string {
		f := filepath.Join(dir, "put")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		nats("object", "put", "--force", "--no-progress", "--name", name, "claimstash_default", f)
		return "nats://default/" + name
	}
	data := randomBytes(2<<20 + 9)
	note := []byte("an operator's note\n")
	good := map[string][]byte{
		put("dump.bin."+hexSum(data), data):        data,
		put("org=42/note.txt."+hexSum(note), note): note,
	}
	bad := []string{
		put("wrong."+hexSum(note), data[:100]),
		put("cut."+hexSum(data), data[:len(data)/2]),
	}
	getChecks(t, "--backend="+srv.URL(), good, bad)
}

// TestInspectKcat is the README's `kcat -C -J | claimstash inspect`: a
// reference kcat produced by hand (body the address, the contract headers
// and one of the operator's own) is read back by kcat -J and inspect shows
// and verifies it; one whose size header lies is the integrity status.
func TestInspectKcat(t *testing.T) {
	bin := clitool.Kcat(t)
	k := kafkatest.Start(t, 1)
	k.CreateTopic(t, "orders", 1, nil)
	be, _ := backend(t)
	data := randomBytes(600 << 10)
	addr := mustCLI(t, bytes.NewReader(data), "put", be, "--name", "orders")
	brokers := strings.Join(k.Addrs, ",")
	ctx := context.Background()
	produce := func(size int, trace string) {
		clitool.Run(t, ctx, nil, []byte(addr), bin, "-P", "-b", brokers, "-t", "orders", "-k", "order-1",
			"-H", "claimstash-version=1", "-H", "claimstash-size="+strconv.Itoa(size), "-H", "trace="+trace)
	}
	produce(len(data), "abc")
	produce(len(data)-1, "lie")
	out := clitool.Run(t, ctx, nil, nil, bin, "-C", "-b", brokers, "-t", "orders", "-o", "beginning", "-e", "-q", "-J", "-c", "2")
	lines := strings.SplitAfter(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("kcat -J printed %d lines:\n%s", len(lines), out)
	}
	shown := mustCLI(t, strings.NewReader(lines[0]), "inspect", be)
	for _, want := range []string{"claim-checked: yes", "claimstash-size: " + strconv.Itoa(len(data)), "address: " + addr, "header: trace: abc", "verified: yes"} {
		if !strings.Contains(shown, want) {
			t.Errorf("inspect of kcat's record lacks %q:\n%s", want, shown)
		}
	}
	var res inspectJSON
	if err := json.Unmarshal([]byte(mustCLI(t, strings.NewReader(lines[0]), "inspect", be, "--json")), &res); err != nil ||
		!res.Verified || res.Address != addr || res.Size != int64(len(data)) || res.Headers["trace"] != "abc" {
		t.Errorf("inspect --json of kcat's record: %+v %v", res, err)
	}
	if _, errs, code := cli(t, strings.NewReader(lines[1]), "inspect", be); code != exitIntegrity || !strings.Contains(errs, "claimstash-size") {
		t.Errorf("inspect of kcat's record with a lying size: exit %d; %s", code, errs)
	}
}
