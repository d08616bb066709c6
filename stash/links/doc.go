// Package links makes, serves and fetches share links: short-lived URLs
// through which anyone holding one can GET one stash without credentials,
// as kstash's stash.share(ttl_sec=...) does.
//
// The engine holds links behind two small interfaces and keeps the
// integrity check: Engine.Share signs with a driver.Signer, and
// Engine.Retrieve and Engine.Open fetch through a stash.LinkFetcher and
// verify what comes back against the digest the link names, exactly as
// they verify a backend's bytes. This package implements both sides:
//
//   - HMAC (NewHMAC) is the driver.Signer for backends that cannot presign
//     (mem, file, nats; stash.WithLinkSigner), and the driver.Verifier that
//     checks its links where they are served. A link is the base URL, the
//     address as a path (stash.LinkPath) and exp, kid and sig: HMAC-SHA256
//     over the method, the path, the expiry and the key id. Keys rotate: the
//     first signs, all verify (ParseKeys reads CLAIMSTASH_LINK_KEYS).
//   - NewHandler serves such links from an engine: 403 for a link that does
//     not verify (before any backend is touched), 410 expired, 404 missing,
//     200 with the payload streamed and verified. If the stored bytes turn
//     out not to match after the 200, a client that reads trailers (TE:
//     trailers, as the Fetcher sends) gets a body short of its size and the
//     trailer TrailerResult saying "failed: integrity"; any other client
//     sees the connection aborted.
//   - Fetcher (NewFetcher) is the stash.LinkFetcher: the process's one list
//     of trusted origins (TrustOrigins; VerifyWith trusts an HMAC signer's
//     origin and checks its links before any request), its own HTTP client,
//     redirects only to trusted origins, expired links refused locally, a
//     body that stalls failed after WithStallTimeout.
//
// Backends that presign natively implement driver.Signer themselves (S3's
// SigV4; an objectstore service's Ed25519 presigned URLs, verified by kid
// with a driver.Verifier on the server); the engine appends a fragment
// naming the address, size and encoding (stash.ParseLink), and the same
// Fetcher fetches them. EngineOptions does the whole setup from keys, a base
// URL and trusted origins in one call.
//
// # Errors
//
// A refused link is stash.ErrForbidden (which matches
// stash.ErrInvalidAddress): a signature that does not verify, an untrusted
// origin, a 401 or 403 answer. An expired link is stash.ErrExpired, a 404
// stash.ErrNotFound. A stash that its server found bad while it sent it
// (TrailerResult "failed: integrity") is stash.ErrIntegrity, so a consumer
// settles its message instead of redelivering it; a server that failed
// otherwise mid-stream, or whose body ends short without saying why, is a
// transient read error. Servers that send no such trailer (S3 and
// objectstore presigned URLs) are read as before: the engine verifies what
// they send against the link's digest.
package links
