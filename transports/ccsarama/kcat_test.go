package ccsarama_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/transports/ccsarama"
)

// kcat returns the kcat binary, skipping t (failing it under CI=true) when
// it is not installed (Debian: apt-get install kcat).
func kcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat not found: install it (Debian: apt-get install kcat)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// TestKcatReadsContract: kcat, a consumer that knows nothing of claimstash
// (librdkafka), reads what the wrapped producer wrote to Apache Kafka as
// the README's wire contract says: a claim-checked record's body is exactly
// one stash address, claimstash-version is 1, claimstash-size is the
// original size, the producer's own headers are there unchanged and the
// per-message override is not; fetched by its address alone, the stash has
// the SHA-256 the address names and the size the header gives. A small
// record passes through byte for byte with no contract header.
func TestKcatReadsContract(t *testing.T) {
	bin := kcat(t)
	k := realKafka(t)
	topic := k.NewTopic(t, "kcat", 1, nil)
	c, _ := newChecker(t)
	cfg := config()
	p, err := ccsarama.WrapSyncProducer(cfg, syncProducer(t, k.Addrs, cfg), c)
	if err != nil {
		t.Fatal(err)
	}
	big := random(t, 3<<20)
	small := "a small body, sent as it is"
	for _, m := range []*sarama.ProducerMessage{
		{Topic: topic, Key: sarama.StringEncoder("big"), Value: sarama.ByteEncoder(big), Headers: []sarama.RecordHeader{
			{Key: []byte("Trace-ID"), Value: []byte("t-1")},
			{Key: []byte(claimcheck.HeaderOffload), Value: []byte(claimcheck.OffloadAlways)},
		}},
		{Topic: topic, Key: sarama.StringEncoder("small"), Value: sarama.StringEncoder(small), Headers: []sarama.RecordHeader{
			{Key: []byte("Trace-ID"), Value: []byte("t-2")},
		}},
	} {
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-C", "-b", strings.Join(k.Addrs, ","), "-t", topic,
		"-o", "beginning", "-e", "-q", "-J", "-c", "2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	t.Logf("kcat -J:\n%s", out)
	var msgs []kcatMessage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m kcatMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("kcat line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("kcat read %d records, want 2:\n%s", len(msgs), out)
	}

	cc := msgs[0]
	if cc.Key == nil || *cc.Key != "big" || cc.Payload == nil {
		t.Fatalf("first record: %+v", cc)
	}
	if v, n := cc.header(claimcheck.HeaderVersion); n != 1 || v != "1" {
		t.Errorf("%s: %q (%d times), want \"1\" once", claimcheck.HeaderVersion, v, n)
	}
	size, n := cc.header(claimcheck.HeaderSize)
	if n != 1 || size != strconv.Itoa(len(big)) {
		t.Errorf("%s: %q (%d times), want %d once", claimcheck.HeaderSize, size, n, len(big))
	}
	if v, n := cc.header("Trace-ID"); n != 1 || v != "t-1" {
		t.Errorf("the producer's header Trace-ID: %q (%d times)", v, n)
	}
	if _, n := cc.header(claimcheck.HeaderOffload); n != 0 {
		t.Errorf("%s was sent; the contract says it is removed", claimcheck.HeaderOffload)
	}
	body := *cc.Payload
	a, err := stash.ParseAddress(body)
	if err != nil {
		t.Fatalf("body %q is not a stash address: %v", body, err)
	}
	if a.String() != body || strings.ContainsAny(body, " \t\r\n") {
		t.Fatalf("body %q is not exactly one address (%q)", body, a.String())
	}
	if a.DigestAlgorithm() != stash.DigestSHA256 {
		t.Fatalf("address %s does not carry a SHA-256", body)
	}
	verifyAddress(t, c, body, size, big)

	plain := msgs[1]
	if plain.Payload == nil || *plain.Payload != small {
		t.Errorf("small record's body: %v, want %q", plain.Payload, small)
	}
	if len(plain.Headers) != 2 || plain.Headers[0] != "Trace-ID" || plain.Headers[1] != "t-2" {
		t.Errorf("small record's headers: %q, want only Trace-ID: t-2", plain.Headers)
	}
}
