package s3stash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/claimstash/claimstash/internal/clitool"
	"github.com/claimstash/claimstash/internal/miniotest"
	"github.com/claimstash/claimstash/internal/pypeer"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/s3stash"
)

// pyBoto3 is the Python peer: boto3 downloads the objects it is given with
// checksum validation on and reports what it sees, then uploads the ones it
// is asked to upload.
const pyBoto3 = `
import base64, hashlib, json, os, sys
import boto3
from botocore.config import Config

req = json.loads(sys.stdin.read())
s3 = boto3.client("s3", endpoint_url=req["endpoint"], config=Config(
    s3={"addressing_style": "path"}, response_checksum_validation="when_supported"))
seen = {}
for key in req["get"]:
    r = s3.get_object(Bucket=req["bucket"], Key=key, ChecksumMode="ENABLED")
    body = r["Body"].read()
    seen[key] = {
        "data": base64.b64encode(body).decode(),
        "content_type": r.get("ContentType", ""),
        "content_encoding": r.get("ContentEncoding", ""),
        "metadata": r.get("Metadata", {}),
        "checksum_sha256": r.get("ChecksumSHA256", ""),
        "checksum_crc32c": r.get("ChecksumCRC32C", ""),
    }
for key, data in req["put"].items():
    s3.put_object(Bucket=req["bucket"], Key=key, Body=base64.b64decode(data))
print(json.dumps(seen))
`

// TestPythonBoto3: boto3 (its own botocore, not the AWS CLI's) downloads
// what the engine wrote, single-part and multipart, with checksum
// validation on, byte-exact and with the documented headers; what boto3
// uploads under the documented layout is read and verified by the engine,
// and a wrong upload is stash.ErrIntegrity.
func TestPythonBoto3(t *testing.T) {
	pypeer.Python(t)
	e, _, srv, bucket := awsEngine(t)
	ctx := context.Background()
	single := payload(200<<10, 101)
	multi := payload(2*partSize+9, 102)
	var keys []string
	stashes := map[string]*stash.Stash{}
	for name, p := range map[string][]byte{"single": single, "multi": multi} {
		s, err := e.Create(ctx, name, p, stash.Compress(stash.CompressionNone), stash.ContentType("application/x-"+name))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s.Address.Key())
		stashes[s.Address.Key()] = s
	}
	fromPy := payload(300<<10, 103)
	req, _ := json.Marshal(map[string]any{
		"endpoint": srv.Endpoint, "bucket": bucket, "get": keys,
		"put": map[string][]byte{"boto3." + hexSHA(fromPy): fromPy, "wrong." + hexSHA(single): fromPy},
	})
	env := clitool.AWSEnv(t, miniotest.AccessKey, miniotest.SecretKey, miniotest.Region)
	out := pypeer.RunStdin(t, ctx, env, req, "-c", pyBoto3)
	var seen map[string]struct {
		Data            []byte
		ContentType     string `json:"content_type"`
		ContentEncoding string `json:"content_encoding"`
		Metadata        map[string]string
		ChecksumSHA256  string `json:"checksum_sha256"`
		ChecksumCRC32C  string `json:"checksum_crc32c"`
	}
	if err := json.Unmarshal(out, &seen); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	for key, s := range stashes {
		got := seen[key]
		want := single
		if s.Name() == "multi" {
			want = multi
		}
		if !bytes.Equal(got.Data, want) || got.ContentType != "application/x-"+s.Name() || got.ContentEncoding != "" ||
			got.Metadata[s3stash.DigestMetadataKey] != s.Address.Digest {
			t.Errorf("%s as boto3 read it: %d bytes, type %q, encoding %q, metadata %v", key, len(got.Data), got.ContentType, got.ContentEncoding, got.Metadata)
		}
		if s.Name() == "single" && got.ChecksumSHA256 != b64SHA(single) {
			t.Errorf("single-part checksum as boto3 read it: %q", got.ChecksumSHA256)
		}
		if s.Name() == "multi" && got.ChecksumCRC32C == "" {
			t.Errorf("multipart object: boto3 saw no CRC32C checksum")
		}
	}
	r, err := e.Retrieve(ctx, "s3://"+bucket+"/boto3."+hexSHA(fromPy))
	if err != nil || !bytes.Equal(r.Data, fromPy) {
		t.Fatalf("Retrieve of what boto3 put: %v", err)
	}
	if _, err := e.Retrieve(ctx, "s3://"+bucket+"/wrong."+hexSHA(single)); !errors.Is(err, stash.ErrIntegrity) {
		t.Fatalf("Retrieve of a wrong boto3 upload: %v, want stash.ErrIntegrity", err)
	}
}
