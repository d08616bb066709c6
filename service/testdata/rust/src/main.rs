//! Drives `claimstash serve` (service.TestOfficialRustClient) with Sentry's
//! official Rust objectstore client, unchanged. Each check prints "ok <name>";
//! the first that fails exits non-zero with what it saw.
//!
//! Environment:
//!   OS_URL             the server's base URL
//!   OS_KID             key id of a key pair written by claimstash's keygen
//!   OS_KEY             path of its private key (PEM)
//!   OS_GO_TOKEN        a token minted by claimstash for testing/org=42;project=7
//!   OS_EXPIRED_TOKEN   the same, already expired
//!   OS_GO_STASH_KEY    key of a zstd stash a Go engine stored in testing/org=42;project=7
//!   OS_RS_KEY          a content-addressed key (name.<sha256>) for the payload below
//!   OS_RS_RAW_KEY      the same for the uncompressed payload below
//!   OS_OUT             a directory this program writes what it read into

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use objectstore_client::{
    Client, Compression, Error, ExpirationPolicy, ExpiryExtension, ExtendExpiryResponse,
    OperationResult, SecretKey, Session, TokenGenerator, Usecase,
};

type Res<T = ()> = std::result::Result<T, String>;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// The payload the Go side addressed as OS_RS_KEY.
pub fn rust_payload() -> Vec<u8> {
    "written by rust ".repeat(500).into_bytes()
}

/// The payload the Go side addressed as OS_RS_RAW_KEY.
pub fn rust_raw_payload() -> Vec<u8> {
    "stored raw by rust ".repeat(300).into_bytes()
}

fn generator() -> TokenGenerator {
    let pem = std::fs::read_to_string(env("OS_KEY")).expect("reading OS_KEY");
    TokenGenerator::new(SecretKey { kid: env("OS_KID"), secret_key: pem }).expect("the keygen key")
}

fn client() -> Client {
    Client::builder(env("OS_URL")).token(generator()).build().expect("client")
}

fn session(client: &Client, org: u64, project: u64) -> Session {
    Usecase::new("testing").expect("usecase").for_project(org, project).session(client).expect("session")
}

/// The HTTP status of a failed request, if the server answered.
fn status(err: &Error) -> Option<u16> {
    match err {
        Error::Reqwest(e) => e.status().map(|s| s.as_u16()),
        _ => None,
    }
}

fn check(cond: bool, what: String) -> Res {
    if cond {
        Ok(())
    } else {
        Err(what)
    }
}

async fn put_get_head_delete(s: &Session) -> Res {
    let body = b"hello from the rust client".to_vec();
    let put = s.put(body.clone()).key("plain/with/slashes").send().await.map_err(|e| format!("put: {e}"))?;
    check(put.key == "plain/with/slashes", format!("put answered key {:?}", put.key))?;
    let got = s.get(&put.key).send().await.map_err(|e| format!("get: {e}"))?.ok_or("get: not found")?;
    let data = got.payload().await.map_err(|e| format!("payload: {e}"))?;
    check(data.as_ref() == body.as_slice(), format!("get returned {} bytes, want {}", data.len(), body.len()))?;
    let meta = s.head(&put.key).send().await.map_err(|e| format!("head: {e}"))?.ok_or("head: not found")?;
    check(meta.time_created.is_some(), "head: no creation time".into())?;
    s.delete(&put.key).send().await.map_err(|e| format!("delete: {e}"))?;
    let gone = s.get(&put.key).send().await.map_err(|e| format!("get after delete: {e}"))?;
    check(gone.is_none(), "get after delete found the object".into())?;
    let gone = s.head(&put.key).send().await.map_err(|e| format!("head after delete: {e}"))?;
    check(gone.is_none(), "head after delete found the object".into())
}

async fn generated_key(s: &Session) -> Res {
    let put = s.put("no key given").send().await.map_err(|e| format!("put: {e}"))?;
    check(put.key.len() == 36 && put.key.chars().filter(|c| *c == '-').count() == 4, format!("server-made key {:?}, want a UUID", put.key))?;
    let got = s.get(&put.key).send().await.map_err(|e| format!("get: {e}"))?.ok_or("get: not found")?;
    let text = got.text().await.map_err(|e| format!("text: {e}"))?;
    check(text == "no key given", format!("get returned {text:?}"))
}

async fn scopes(c: &Client) -> Res {
    let a = session(c, 42, 7);
    let b = session(c, 42, 8);
    a.put("scope a").key("scoped").send().await.map_err(|e| format!("put: {e}"))?;
    let other = b.get("scoped").send().await.map_err(|e| format!("get in another scope: {e}"))?;
    check(other.is_none(), "an object of org=42;project=7 was read in org=42;project=8".into())?;
    let custom = Usecase::new("testing").expect("usecase").scope().push("org", 42).push("app", "email-app").session(c).map_err(|e| format!("session: {e}"))?;
    custom.put("custom scope").key("scoped").send().await.map_err(|e| format!("put in a custom scope: {e}"))?;
    let got = custom.get("scoped").send().await.map_err(|e| format!("get: {e}"))?.ok_or("get: not found")?;
    let text = got.text().await.map_err(|e| format!("text: {e}"))?;
    check(text == "custom scope", format!("custom scope returned {text:?}"))
}

async fn expiry(s: &Session) -> Res {
    let ttl = ExpirationPolicy::TimeToLive(Duration::from_secs(3600));
    s.put("lives an hour").key("ttl").expiration_policy(ttl).send().await.map_err(|e| format!("put ttl: {e}"))?;
    let meta = s.head("ttl").send().await.map_err(|e| format!("head ttl: {e}"))?.ok_or("head ttl: not found")?;
    check(meta.expiration_policy == ttl, format!("ttl object has policy {:?}", meta.expiration_policy))?;
    let expires = meta.time_expires.ok_or("ttl object has no expiry time")?;
    let left = SystemTime::from(expires).duration_since(SystemTime::now()).map_err(|_| "ttl object expired already")?;
    check(left > Duration::from_secs(3500) && left <= Duration::from_secs(3601), format!("ttl object expires in {left:?}"))?;

    let tti = ExpirationPolicy::TimeToIdle(Duration::from_secs(1800));
    s.put("idles half an hour").key("tti").expiration_policy(tti).send().await.map_err(|e| format!("put tti: {e}"))?;
    let meta = s.head("tti").send().await.map_err(|e| format!("head tti: {e}"))?.ok_or("head tti: not found")?;
    check(meta.expiration_policy == tti, format!("tti object has policy {:?}", meta.expiration_policy))?;

    // Objectstore's expiry extension (PATCH), as the client sends it.
    let r = s.extend_expiry("ttl", ExpiryExtension::FromNow(Duration::from_secs(7200))).send().await.map_err(|e| format!("extend: {e}"))?;
    check(r == ExtendExpiryResponse::Satisfied, format!("extend_expiry answered {r:?}"))?;
    let meta = s.head("ttl").send().await.map_err(|e| format!("head after extend: {e}"))?.ok_or("head after extend: not found")?;
    let left = SystemTime::from(meta.time_expires.ok_or("no expiry after extend")?).duration_since(SystemTime::now()).map_err(|_| "expired after extend")?;
    check(left > Duration::from_secs(7000), format!("after extending to two hours, expires in {left:?}"))?;
    let r = s.extend_expiry("ttl", ExpiryExtension::At(SystemTime::now() + Duration::from_secs(60))).send().await.map_err(|e| format!("extend to an earlier time: {e}"))?;
    check(r == ExtendExpiryResponse::Satisfied, format!("extend_expiry to an earlier deadline answered {r:?}"))?;
    let meta = s.head("ttl").send().await.map_err(|e| format!("head: {e}"))?.ok_or("head: not found")?;
    let left = SystemTime::from(meta.time_expires.ok_or("no expiry")?).duration_since(SystemTime::now()).map_err(|_| "expired")?;
    check(left > Duration::from_secs(7000), format!("an earlier deadline shortened the expiry to {left:?}"))?;
    let r = s.extend_expiry("no-such-key", ExpiryExtension::FromNow(Duration::from_secs(60))).send().await.map_err(|e| format!("extend a missing key: {e}"))?;
    check(r == ExtendExpiryResponse::NotFound, format!("extend_expiry of a missing key answered {r:?}"))
}

async fn metadata(s: &Session) -> Res {
    s.put("{\"a\": 1}")
        .key("meta")
        .content_type("application/json")
        .origin("203.0.113.42")
        .filename("report final.json")
        .append_metadata("source", "rust")
        .append_metadata("team", "storage")
        .send()
        .await
        .map_err(|e| format!("put: {e}"))?;
    for (how, meta) in [
        ("head", s.head("meta").send().await.map_err(|e| format!("head: {e}"))?.ok_or("head: not found")?),
        ("get", s.get("meta").send().await.map_err(|e| format!("get: {e}"))?.ok_or("get: not found")?.metadata),
    ] {
        check(meta.content_type == "application/json", format!("{how}: content type {:?}", meta.content_type))?;
        check(meta.origin.as_deref() == Some("203.0.113.42"), format!("{how}: origin {:?}", meta.origin))?;
        check(meta.filename.as_deref() == Some("report final.json"), format!("{how}: filename {:?}", meta.filename))?;
        let want: BTreeMap<String, String> = [("source", "rust"), ("team", "storage")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        check(meta.custom == want, format!("{how}: custom metadata {:?}", meta.custom))?;
    }
    Ok(())
}

async fn zstd(s: &Session) -> Res {
    let body = "compress me ".repeat(4000).into_bytes();
    s.put(body.clone()).key("zstd").send().await.map_err(|e| format!("put: {e}"))?;
    let got = s.get("zstd").send().await.map_err(|e| format!("get: {e}"))?.ok_or("get: not found")?;
    let data = got.payload().await.map_err(|e| format!("payload: {e}"))?;
    check(data.as_ref() == body.as_slice(), format!("decompressed get returned {} bytes, want {}", data.len(), body.len()))?;
    let raw = s.get("zstd").decompress(false).send().await.map_err(|e| format!("raw get: {e}"))?.ok_or("raw get: not found")?;
    check(raw.metadata.compression == Some(Compression::Zstd), format!("stored compression {:?}", raw.metadata.compression))?;
    let stored = raw.payload().await.map_err(|e| format!("raw payload: {e}"))?;
    check(stored.len() < body.len() / 10 && stored.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), format!("raw get returned {} bytes that are not a zstd frame", stored.len()))?;
    let kept = s.get("zstd").accept_encoding([Compression::Zstd]).send().await.map_err(|e| format!("get accepting zstd: {e}"))?.ok_or("not found")?;
    check(kept.metadata.compression == Some(Compression::Zstd), format!("accept_encoding: compression {:?}", kept.metadata.compression))?;
    let kept = kept.payload().await.map_err(|e| format!("payload: {e}"))?;
    check(kept == stored, "accept_encoding returned other bytes than the stored frame".into())?;
    s.put(body.clone()).key("plain").compress(None).send().await.map_err(|e| format!("put uncompressed: {e}"))?;
    let plain = s.get("plain").decompress(false).send().await.map_err(|e| format!("get: {e}"))?.ok_or("not found")?;
    check(plain.metadata.compression.is_none(), format!("uncompressed object has compression {:?}", plain.metadata.compression))?;
    let data = plain.payload().await.map_err(|e| format!("payload: {e}"))?;
    check(data.as_ref() == body.as_slice(), "uncompressed object changed".into())
}

async fn gzip(s: &Session) -> Res {
    // objectstore's server takes gzip as well as zstd, from a put and a
    // batch insert, and serves it labelled.
    let body = "gzip me ".repeat(4000).into_bytes();
    s.put(body.clone()).key("gzip").compress(Compression::Gzip).send().await.map_err(|e| format!("put: {e}"))?;
    let mut results = s.many().push(s.put(body.clone()).key("gzip-batch").compress(Compression::Gzip)).send().await;
    while let Some(r) = results.next().await {
        if let OperationResult::Put(k, Err(e)) = r {
            return Err(format!("batch put of {k:?}: {e}"));
        }
    }
    for key in ["gzip", "gzip-batch"] {
        let got = s.get(key).send().await.map_err(|e| format!("{key}: get: {e}"))?.ok_or(format!("{key}: get: not found"))?;
        let data = got.payload().await.map_err(|e| format!("{key}: payload: {e}"))?;
        check(data.as_ref() == body.as_slice(), format!("{key}: decompressed get returned {} bytes, want {}", data.len(), body.len()))?;
        let raw = s.get(key).decompress(false).send().await.map_err(|e| format!("{key}: raw get: {e}"))?.ok_or(format!("{key}: raw get: not found"))?;
        check(raw.metadata.compression == Some(Compression::Gzip), format!("{key}: stored compression {:?}", raw.metadata.compression))?;
        let stored = raw.payload().await.map_err(|e| format!("{key}: raw payload: {e}"))?;
        check(stored.len() < body.len() / 10 && stored.starts_with(&[0x1f, 0x8b]), format!("{key}: raw get returned {} bytes that are not gzip", stored.len()))?;
    }
    Ok(())
}

async fn zero_expiry(s: &Session) -> Res {
    // The client writes a zero duration as "ttl:0s", which objectstore's
    // server takes; claimstash's takes it as one second.
    s.put("gone soon").key("ttl-zero").expiration_policy(ExpirationPolicy::TimeToLive(Duration::ZERO)).send().await.map_err(|e| format!("put: {e}"))?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gone = s.get("ttl-zero").send().await.map_err(|e| format!("get: {e}"))?;
    check(gone.is_none(), "an object put with a zero TTL is still there after 2.5 s".into())
}

async fn batch(s: &Session) -> Res {
    s.put("to be deleted").key("batch-del").send().await.map_err(|e| format!("put: {e}"))?;
    let mut results = s
        .many()
        .push(s.put("batched one").key("batch-1"))
        .push(s.put("batched two").key("batch/2"))
        .push(s.delete("batch-del"))
        .send()
        .await;
    let mut seen = 0;
    while let Some(r) = results.next().await {
        seen += 1;
        match r {
            OperationResult::Put(k, Err(e)) | OperationResult::Delete(k, Err(e)) => {
                return Err(format!("batch operation on {k:?}: {e}"));
            }
            OperationResult::Error(e) => return Err(format!("batch: {e}")),
            _ => {}
        }
    }
    check(seen == 3, format!("batch answered {seen} operations, want 3"))?;
    let mut results = s
        .many()
        .push(s.get("batch-1"))
        .push(s.head("batch/2"))
        .push(s.get("batch-del"))
        .send()
        .await;
    let mut got = BTreeMap::new();
    while let Some(r) = results.next().await {
        match r {
            OperationResult::Get(k, Ok(Some(resp))) => {
                got.insert(k, resp.text().await.map_err(|e| format!("text: {e}"))?);
            }
            OperationResult::Get(k, Ok(None)) => {
                got.insert(k, "<missing>".into());
            }
            OperationResult::Head(k, Ok(Some(_))) => {
                got.insert(k, "<there>".into());
            }
            other => return Err(format!("batch read: {other:?}")),
        }
    }
    let want: BTreeMap<String, String> =
        [("batch-1", "batched one"), ("batch/2", "<there>"), ("batch-del", "<missing>")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    check(got == want, format!("batch reads {got:?}, want {want:?}"))
}

async fn tokens() -> Res {
    // A token minted by claimstash, as a static token.
    let c = Client::builder(env("OS_URL")).token(env("OS_GO_TOKEN")).build().expect("client");
    let s = session(&c, 42, 7);
    s.put("go token").key("go-token").send().await.map_err(|e| format!("put with the claimstash token: {e}"))?;
    // The same token for another scope: 403.
    let err = session(&c, 43, 7).put("wrong scope").key("x").send().await.err().ok_or("a token for org=42 wrote to org=43")?;
    check(status(&err) == Some(403), format!("wrong scope: {err} (status {:?}), want 403", status(&err)))?;
    // An expired token: 401.
    let c = Client::builder(env("OS_URL")).token(env("OS_EXPIRED_TOKEN")).build().expect("client");
    let err = session(&c, 42, 7).get("go-token").send().await.err().ok_or("an expired token read")?;
    check(status(&err) == Some(401), format!("expired token: {err} (status {:?}), want 401", status(&err)))?;
    // A token from the Rust client's own generator, static, read-only.
    let g = generator();
    let scope = Usecase::new("testing").expect("usecase").for_project(42, 7);
    let tok = g.create_token(&scope).permissions(&[objectstore_client::Permission::ObjectRead]).sign().map_err(|e| format!("sign: {e}"))?;
    let c = Client::builder(env("OS_URL")).token(tok).build().expect("client");
    let s = session(&c, 42, 7);
    let got = s.get("go-token").send().await.map_err(|e| format!("get with a read-only token: {e}"))?.ok_or("not found")?;
    check(got.text().await.map_err(|e| format!("text: {e}"))? == "go token", "read-only token read other bytes".into())?;
    let err = s.put("not allowed").key("ro").send().await.err().ok_or("a read-only token wrote")?;
    check(status(&err) == Some(403), format!("read-only token writing: {err} (status {:?}), want 403", status(&err)))?;
    // No token at all: 400, or 401.
    let c = Client::builder(env("OS_URL")).build().expect("client");
    let err = session(&c, 42, 7).get("go-token").send().await.err().ok_or("no token read")?;
    check(matches!(status(&err), Some(400) | Some(401)), format!("no token: {err} (status {:?}), want 400 or 401", status(&err)))
}

/// A presigned URL for url (method GET), signed with objectstore's own
/// canonical form (objectstore_types::presign) over the path and query as
/// they go on the wire. encode_query: the timestamp's colons
/// percent-encoded, as a form encoder writes them, or as they are.
fn presign(url: &mut reqwest::Url, duration: u64, encode_query: bool) -> Res {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use objectstore_types::presign::{CanonicalRequest, PARAM_DURATION, PARAM_KID, PARAM_SIG, PARAM_TIMESTAMP};
    let pem = std::fs::read_to_string(env("OS_KEY")).map_err(|e| format!("reading OS_KEY: {e}"))?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|e| format!("the keygen key: {e}"))?;
    let now = objectstore_types::time::Timestamp::now().as_rfc3339().to_string();
    if encode_query {
        url.query_pairs_mut()
            .append_pair(PARAM_KID, &env("OS_KID"))
            .append_pair(PARAM_TIMESTAMP, &now)
            .append_pair(PARAM_DURATION, &duration.to_string());
    } else {
        url.set_query(Some(&format!("{PARAM_TIMESTAMP}={now}&{PARAM_DURATION}={duration}&{PARAM_KID}={}", env("OS_KID"))));
    }
    let sig = CanonicalRequest::new(&http::Method::GET, url.path(), url.query()).sign(&key.to_bytes());
    let q = format!("{}&{PARAM_SIG}={sig}", url.query().unwrap_or_default());
    url.set_query(Some(&q));
    Ok(())
}

async fn presigned(s: &Session) -> Res {
    // A key that needs escaping on the wire: the signature covers it as sent.
    let key = "shared/a b+c(1)";
    s.put("presigned bytes").key(key).compress(None).send().await.map_err(|e| format!("put: {e}"))?;
    let http = reqwest::Client::new();
    for encode in [true, false] {
        let mut url = s.object_url(key);
        presign(&mut url, 600, encode)?;
        let r = http.get(url.clone()).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = r.status().as_u16();
        let body = r.bytes().await.map_err(|e| format!("body: {e}"))?;
        check(status == 200 && body.as_ref() == b"presigned bytes", format!("GET of a presigned URL ({url}): {status}, {:?}", String::from_utf8_lossy(&body)))?;
        let r = http.head(url.clone()).send().await.map_err(|e| format!("HEAD {url}: {e}"))?;
        check(r.status().is_success(), format!("HEAD of a presigned URL: {}", r.status()))?;
        let r = http.delete(url.clone()).send().await.map_err(|e| format!("DELETE {url}: {e}"))?;
        check(r.status().as_u16() == 401 || r.status().as_u16() == 403, format!("DELETE with a presigned URL: {}, want 401 or 403", r.status()))?;
        // The same signature with a longer lifetime, or for another key.
        let longer = reqwest::Url::parse(&url.as_str().replace("os_duration=600", "os_duration=6000")).map_err(|e| e.to_string())?;
        let r = http.get(longer).send().await.map_err(|e| format!("GET: {e}"))?;
        check(r.status().as_u16() == 401, format!("GET with a lifetime the signature does not cover: {}, want 401", r.status()))?;
        let other = reqwest::Url::parse(&url.as_str().replace("a%20b", "a%20c")).map_err(|e| e.to_string())?;
        let r = http.get(other).send().await.map_err(|e| format!("GET: {e}"))?;
        check(r.status().as_u16() == 401, format!("GET of another key with the signature: {}, want 401", r.status()))?;
    }
    // Over the seven days objectstore allows.
    let mut url = s.object_url(key);
    presign(&mut url, 8 * 86400, true)?;
    let r = http.get(url).send().await.map_err(|e| format!("GET: {e}"))?;
    check(r.status().is_client_error(), format!("GET of a URL valid for 8 days: {}, want refused", r.status()))
}

/// Objectstore's resumable uploads, which claimstash's server declines with
/// 501: the client reports that (None) for a keyed and an unkeyed upload,
/// and the plain put it falls back to stores the object.
async fn resumable_declined(s: &Session) -> Res {
    for key in [Some("resumable"), None] {
        let mut b = s.create_upload(11);
        if let Some(k) = key {
            b = b.key(k);
        }
        let up = b.send().await.map_err(|e| format!("create_upload({key:?}): {e}"))?;
        check(up.is_none(), format!("create_upload({key:?}) was accepted; want it declined"))?;
    }
    let put = s.put("fell back!!").key("resumable").send().await.map_err(|e| format!("put: {e}"))?;
    let got = s.get(&put.key).send().await.map_err(|e| format!("get: {e}"))?.ok_or("get: not found")?;
    check(got.text().await.map_err(|e| e.to_string())? == "fell back!!", "the plain put after the declined upload".into())
}

async fn go_interop(s: &Session) -> Res {
    let key = env("OS_GO_STASH_KEY");
    let got = s.get(&key).send().await.map_err(|e| format!("get the Go stash: {e}"))?.ok_or("the Go stash is not there")?;
    let data = got.payload().await.map_err(|e| format!("payload: {e}"))?;
    std::fs::write(std::path::Path::new(&env("OS_OUT")).join("go-stash"), &data).map_err(|e| format!("write: {e}"))?;
    s.put(rust_payload()).key(env("OS_RS_KEY")).append_metadata("source", "rust").send().await.map_err(|e| format!("put for Go: {e}"))?;
    s.put(rust_raw_payload()).key(env("OS_RS_RAW_KEY")).compress(None).send().await.map_err(|e| format!("put raw for Go: {e}"))?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let c = client();
    let s = session(&c, 42, 7);
    let checks: Vec<(&str, Res)> = vec![
        ("put_get_head_delete", put_get_head_delete(&s).await),
        ("generated_key", generated_key(&s).await),
        ("scopes", scopes(&c).await),
        ("expiry", expiry(&s).await),
        ("metadata", metadata(&s).await),
        ("zstd", zstd(&s).await),
        ("gzip", gzip(&s).await),
        ("zero_expiry", zero_expiry(&s).await),
        ("batch", batch(&s).await),
        ("tokens", tokens().await),
        ("presigned", presigned(&s).await),
        ("resumable_declined", resumable_declined(&s).await),
        ("go_interop", go_interop(&s).await),
    ];
    let mut failed = false;
    for (name, r) in checks {
        match r {
            Ok(()) => println!("ok {name}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
