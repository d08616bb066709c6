"""The official objectstore client against claimstash's server.

Run by service/python_test.go, which starts the server in-process on a
loopback port, and by cmd/claimstash/objectstore_test.go, which runs the same
tests against a built `claimstash serve` with keys from `claimstash keygen
--kind objectstore` and tokens from `claimstash token`. Both pass the server
in the environment:

  OS_URL             the server's base URL
  OS_KID             key id of a key pair written by claimstash's keygen
  OS_KEY             path of its private key (PEM)
  OS_GO_TOKEN        a token minted by claimstash for testing/org=42;project=7
  OS_EXPIRED_TOKEN   the same, already expired
  OS_GO_STASH_KEY    key of a zstd stash a Go engine stored in testing/org=42;project=7
  OS_GO_STASH_SHA256 the SHA-256 of its payload
"""

import hashlib
import os
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import zstandard
from objectstore_client.multipart import CompletePart, MultipartCompleteError
from objectstore_client import (
    Client,
    ExpiryExtensionRejected,
    ObjectNotFound,
    Permission,
    RequestError,
    SecretKey,
    TimeToIdle,
    TimeToLive,
    Usecase,
)

URL = os.environ["OS_URL"]
KID = os.environ["OS_KID"]
with open(os.environ["OS_KEY"]) as f:
    PRIVATE_KEY = f.read()

USECASE = Usecase("testing")
PLAIN = Usecase("testing", compression="none")


def key_client():
    return Client(URL, token=SecretKey(KID, PRIVATE_KEY))


def session(usecase=USECASE, client=None, **scopes):
    scopes = scopes or {"org": 42, "project": 7}
    return (client or key_client()).session(usecase, **scopes)


def test_put_get_head_delete():
    s = session()
    key = s.put(b"hello from python", key="greeting")
    assert key == "greeting"
    got = s.get("greeting")
    assert got.payload.read() == b"hello from python"
    meta = s.head("greeting")
    assert meta is not None
    assert meta.content_type == "application/octet-stream"
    assert meta.time_created is not None
    s.delete("greeting")
    assert s.get("greeting") is None
    assert s.head("greeting") is None


def test_generated_key():
    s = session()
    key = s.put(b"no name given")
    assert len(key) == 36 and key.count("-") == 4
    assert s.get(key).payload.read() == b"no name given"


def test_keys_with_slashes_and_odd_characters():
    s = session()
    for key in ["a/b/c.txt", "with space", "percent%sign", "ünïcode"]:
        s.put(key.encode(), key=key)
        assert s.get(key).payload.read() == key.encode()


def test_scopes_are_separate_and_ordered():
    c = key_client()
    a = c.session(USECASE, org=42, project=7)
    b = c.session(USECASE, project=7, org=42)
    a.put(b"in a", key="same")
    b.put(b"in b", key="same")
    assert a.get("same").payload.read() == b"in a"
    assert b.get("same").payload.read() == b"in b"
    assert c.session(USECASE, org=42).get("same") is None
    unscoped = c.session(USECASE)
    unscoped.put(b"no scopes", key="same")
    assert unscoped.get("same").payload.read() == b"no scopes"


def test_ttl_expires():
    s = session()
    s.put(b"short", key="ttl", expiration_policy=TimeToLive(timedelta(seconds=1)))
    meta = s.head("ttl")
    assert meta.expiration_policy == TimeToLive(timedelta(seconds=1))
    assert meta.time_expires - meta.time_created == timedelta(seconds=1)
    time.sleep(1.3)
    assert s.get("ttl") is None


def test_sub_second_ttl_is_a_second():
    # The client writes any duration under a second as "0s"; the server
    # takes it as one second, the least the header states.
    s = session()
    s.put(b"brief", key="ttl-brief", expiration_policy=TimeToLive(timedelta(milliseconds=300)))
    meta = s.head("ttl-brief")
    if meta is not None:  # a slow machine may be past the second already
        assert meta.expiration_policy == TimeToLive(timedelta(seconds=1))
    time.sleep(1.3)
    assert s.get("ttl-brief") is None


def test_tti_extends_on_read():
    s = session()
    s.put(b"idle", key="tti", expiration_policy=TimeToIdle(timedelta(seconds=2)))
    assert s.head("tti").expiration_policy == TimeToIdle(timedelta(seconds=2))
    for _ in range(3):
        time.sleep(1.0)
        assert s.get("tti").payload.read() == b"idle"  # each read bumps it
    time.sleep(2.3)
    assert s.get("tti") is None


def test_extend_expiry():
    s = session()
    s.put(b"extend me", key="extend", expiration_policy=TimeToLive(timedelta(hours=1)))
    before = s.head("extend")
    s.extend_expiry("extend", from_now=timedelta(hours=3))
    after = s.head("extend")
    assert after.time_expires - before.time_expires > timedelta(hours=1, minutes=59)
    assert after.expiration_policy.delta >= timedelta(hours=2, minutes=59)
    # Never shortened; absolute and creation-relative targets.
    s.extend_expiry("extend", at=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert s.head("extend").time_expires == after.time_expires
    s.extend_expiry("extend", from_creation=timedelta(days=1))
    assert s.head("extend").time_expires - after.time_created == timedelta(days=1)
    assert s.get("extend").payload.read() == b"extend me"
    # Time-to-idle keeps its duration; the current deadline moves.
    s.put(b"idle", key="extend-tti", expiration_policy=TimeToIdle(timedelta(minutes=10)))
    s.extend_expiry("extend-tti", from_now=timedelta(hours=1))
    meta = s.head("extend-tti")
    assert meta.expiration_policy == TimeToIdle(timedelta(minutes=10))
    assert meta.time_expires - meta.time_created > timedelta(minutes=59)
    # Missing objects and objects that never expire.
    with pytest.raises(ObjectNotFound):
        s.extend_expiry("never-stored", from_now=timedelta(hours=1))
    s.put(b"forever", key="manual")
    with pytest.raises(ExpiryExtensionRejected):
        s.extend_expiry("manual", from_now=timedelta(hours=1))


def test_origin_filename_and_metadata():
    s = session()
    s.put(
        b"{}",
        key="meta",
        content_type="application/json",
        origin="203.0.113.9",
        filename="report ü.json",
        metadata={"color": "blue", "note": "50% off ü"},
    )
    got = s.get("meta")
    assert got.payload.read() == b"{}"
    m = got.metadata
    assert m.content_type == "application/json"
    assert m.origin == "203.0.113.9"
    assert m.filename == "report ü.json"
    assert m.custom == {"color": "blue", "note": "50% off ü"}
    assert s.head("meta").custom == {"color": "blue", "note": "50% off ü"}


def test_zstd_round_trip():
    payload = b"compress me " * 10000
    s = session()
    s.put(payload, key="z", compress="zstd")
    got = s.get("z")
    assert got.metadata.compression is None  # decompressed for us
    assert got.payload.read() == payload
    raw = s.get("z", decompress=False)
    assert raw.metadata.compression == "zstd"
    stored = raw.payload.read()
    assert len(stored) < len(payload)
    assert zstandard.ZstdDecompressor().decompress(stored, max_output_size=len(payload)) == payload
    s.put(payload, key="plain", compress="none")
    assert s.head("plain").compression is None
    assert s.get("plain").payload.read() == payload


def test_precompressed_and_accept_encoding():
    # A body the caller compressed is stored verbatim and labelled zstd; a
    # read decodes it, and one that accepts zstd gets the stored bytes.
    payload = b"compressed by the caller " * 4000
    frame = zstandard.ZstdCompressor().compress(payload)
    s = session()
    s.put(frame, key="pre", precompressed="zstd")
    assert s.head("pre").compression == "zstd"
    assert s.get("pre").payload.read() == payload
    raw = s.get("pre", accept_encoding=["zstd"])
    assert raw.metadata.compression == "zstd"
    assert raw.payload.read() == frame


def test_resumable_put_falls_back_to_a_plain_put():
    # At or above resumable_threshold_bytes the client asks for a resumable
    # upload first; the server declines (501) and the client sends one PUT.
    s = session()
    s.put(b"old", key="big")
    payload = b"resumable or not " * 1000
    assert s.put(payload, key="big", resumable_threshold_bytes=0) == "big"
    assert s.get("big").payload.read() == payload
    key = s.put(payload, resumable_threshold_bytes=0, compress="none")
    assert s.get(key).payload.read() == payload


def test_multipart_upload():
    # Parts put out of order, listed and completed make the object, with
    # the metadata given at initiate; the upload is gone after.
    s = session(PLAIN)
    s.put(b"old", key="parts/big")
    up = s.initiate_multipart_upload(
        key="parts/big",
        content_type="text/plain",
        metadata={"color": "blue"},
        origin="10.0.0.9",
        expiration_policy=TimeToLive(timedelta(hours=1)),
    )
    assert up.key == "parts/big"
    chunks = [b"alpha-" * 1000, b"bravo-" * 2000, b"charlie"]
    done = {}
    for n in (3, 1, 2):
        done[n] = up.put_part(chunks[n - 1], part_number=n, content_length=len(chunks[n - 1]))
    listed = up.list_parts()
    assert [p.part_number for p in listed] == [1, 2, 3]
    assert [p.etag for p in listed] == [done[n].etag for n in (1, 2, 3)]
    assert [p.size for p in listed] == [len(c) for c in chunks]
    assert all(p.last_modified.tzinfo is not None for p in listed)
    assert s.get("parts/big").payload.read() == b"old"
    assert up.complete(listed) == "parts/big"
    got = s.get("parts/big")
    assert got.payload.read() == b"".join(chunks)
    assert got.metadata.content_type == "text/plain"
    assert got.metadata.custom == {"color": "blue"}
    assert got.metadata.origin == "10.0.0.9"
    assert got.metadata.expiration_policy == TimeToLive(timedelta(hours=1))
    with pytest.raises(RequestError) as e:
        up.list_parts()
    assert e.value.status == 404


def test_multipart_upload_key_made_by_server():
    s = session(PLAIN)
    up = s.initiate_multipart_upload()
    assert up.key
    part = up.put_part(b"made", part_number=1, content_length=4, content_md5=hashlib.md5(b"made").digest())
    assert up.complete([part]) == up.key
    assert s.get(up.key).payload.read() == b"made"


def test_multipart_upload_refusals():
    s = session(PLAIN)
    up = s.initiate_multipart_upload(key="refused")
    good = up.put_part(b"one", part_number=1, content_length=3)
    with pytest.raises(RequestError) as e:
        up.put_part(b"two", part_number=2, content_length=3, content_md5=hashlib.md5(b"not two").digest())
    assert e.value.status == 400
    assert [p.part_number for p in up.list_parts()] == [1]
    with pytest.raises(MultipartCompleteError) as e:
        up.complete([CompletePart(part_number=1, etag="not the etag")])
    assert e.value.code == "InvalidPart"
    assert up.complete([good]) == "refused"


def test_multipart_upload_abort():
    s = session(PLAIN)
    up = s.initiate_multipart_upload(key="aborted")
    up.put_part(b"gone", part_number=1, content_length=4)
    up.abort()
    with pytest.raises(RequestError) as e:
        up.list_parts()
    assert e.value.status == 404
    assert s.get("aborted") is None


def test_multipart_upload_zstd():
    # With zstd each part is compressed by the caller, a frame of its
    # own; the object reads back as the parts' decompressed bytes.
    s = session()
    up = s.initiate_multipart_upload(key="zparts", compression="zstd")
    cctx = zstandard.ZstdCompressor()
    chunks = [b"x" * 100_000, b"y" * 50_000]
    parts = []
    for n, c in enumerate(chunks, 1):
        z = cctx.compress(c)
        parts.append(up.put_part(z, part_number=n, content_length=len(z)))
    assert up.complete(parts) == "zparts"
    assert s.head("zparts").compression == "zstd"
    assert s.get("zparts").payload.read() == b"".join(chunks)
    raw = s.get("zparts", accept_encoding=["zstd"])
    assert raw.payload.read() == b"".join(cctx.compress(c) for c in chunks)


def test_token_minted_by_claimstash():
    c = Client(URL, token=os.environ["OS_GO_TOKEN"])
    s = c.session(USECASE, org=42, project=7)
    s.put(b"go token", key="go")
    assert s.get("go").payload.read() == b"go token"
    with pytest.raises(RequestError) as e:
        c.session(USECASE, org=43, project=7).get("go")
    assert e.value.status == 403


def test_python_token_generator_with_claimstash_key():
    sk = SecretKey(KID, PRIVATE_KEY)
    token = sk.token_for_scope("testing", session()._scope)
    s = session(client=Client(URL, token=token))
    s.put(b"python token", key="py")
    assert s.get("py").payload.read() == b"python token"


def test_wrong_scope_refused():
    sk = SecretKey(KID, PRIVATE_KEY)
    token = sk.token_for_scope("testing", session(org=1, project=1)._scope)
    with pytest.raises(RequestError) as e:
        session(client=Client(URL, token=token)).put(b"x", key="nope")
    assert e.value.status == 403
    read_only = SecretKey(KID, PRIVATE_KEY, permissions=[Permission.OBJECT_READ])
    with pytest.raises(RequestError) as e:
        session(client=Client(URL, token=read_only)).put(b"x", key="nope")
    assert e.value.status == 403


def test_expired_and_missing_tokens_refused():
    with pytest.raises(RequestError) as e:
        session(client=Client(URL, token=os.environ["OS_EXPIRED_TOKEN"])).get("go")
    assert e.value.status == 401
    with pytest.raises(RequestError) as e:
        session(client=Client(URL)).put(b"x", key="anon")
    assert e.value.status == 400


def fetch(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read(), r.headers


def test_presigned_urls_over_plain_http():
    s = session(PLAIN)
    s.put(b"shared", key="share/me")
    status, body, _ = fetch(s.presigned_object_url("GET", "share/me", timedelta(minutes=5)))
    assert (status, body) == (200, b"shared")
    status, body, headers = fetch(s.presigned_object_url("HEAD", "share/me"), method="HEAD")
    assert status == 204
    assert headers["x-sn-size"] == "6"
    # HEAD and GET sign alike.
    status, _, _ = fetch(s.presigned_object_url("GET", "share/me"), method="HEAD")
    assert status == 204
    url = s.presigned_object_url("GET", "share/me")
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(url.replace("share/me", "share/other"))
    assert e.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(url, method="DELETE")
    assert e.value.code == 401


def test_object_url_with_token():
    s = session(PLAIN)
    s.put(b"by url", key="url")
    status, body, _ = fetch(s.object_url("url", token_validity=timedelta(minutes=1)))
    assert (status, body) == (200, b"by url")
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(s.object_url("url"))
    assert e.value.code == 400


def test_time_created_is_recent():
    s = session()
    s.put(b"t", key="time")
    created = s.head("time").time_created
    assert abs(datetime.now(created.tzinfo) - created) < timedelta(minutes=1)


def test_reads_a_stash_made_by_the_go_engine():
    import hashlib

    got = session().get(os.environ["OS_GO_STASH_KEY"])
    assert got is not None
    payload = got.payload.read()
    assert hashlib.sha256(payload).hexdigest() == os.environ["OS_GO_STASH_SHA256"]
    assert got.metadata.origin == "go-engine"
    assert got.metadata.custom["source"] == "go"


def test_writes_a_stash_for_the_go_engine():
    import hashlib

    payload = b"written by python " * 500
    key = "py-made." + hashlib.sha256(payload).hexdigest()
    session().put(payload, key=key, compress="none", metadata={"source": "python"})
    # And with the client's default compression (zstd), which sends no
    # decoded size: the server counts it for the Go engine.
    zpayload = b"compressed by python " * 500
    zkey = "py-zstd." + hashlib.sha256(zpayload).hexdigest()
    session().put(zpayload, key=zkey, metadata={"source": "python"})
    assert session().get(zkey, decompress=False).metadata.compression == "zstd"
