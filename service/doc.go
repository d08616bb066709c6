// Package service serves Sentry objectstore's v1 HTTP API over a stash
// driver, so that objectstore's official clients (the objectstore-client
// Python package) and claimstash's own backend (package
// stash/objectstash) share stashes through one service, and producers and
// consumers hold a scoped token instead of credentials for the store.
// `claimstash serve` hosts it beside the share-link handler.
//
// # Routes
//
//	PUT    /v1/objects/{usecase}/{scopes}/{key}   200 {"key":…}; replaces
//	POST   /v1/objects/{usecase}/{scopes}/        201 {"key":<UUIDv4>}
//	GET    /v1/objects/{usecase}/{scopes}/{key}   200, 206 for Range, 416, 404 without a body
//	HEAD   /v1/objects/{usecase}/{scopes}/{key}   204 with the metadata headers, or 404
//	PATCH  /v1/objects/{usecase}/{scopes}/{key}   204: extend the expiry (see below)
//	DELETE /v1/objects/{usecase}/{scopes}/{key}   204
//	POST   /v1/objects:batch/{usecase}/{scopes}/  multipart operations (see below)
//	POST   /v1/objects:multipart/{usecase}/{scopes}/        initiate, key made: 200 {"key","upload_id"}
//	PUT    /v1/objects:multipart/{usecase}/{scopes}/{key}   initiate: 200 {"key","upload_id"}
//	DELETE /v1/objects:multipart/…/{key}?upload_id=         abort: 204
//	PUT    /v1/objects:multipart:parts/…/{key}?upload_id=&part_number=   200 {"etag"}
//	GET    /v1/objects:multipart:parts/…/{key}?upload_id=   the parts stored (see below)
//	POST   /v1/objects:multipart:complete/…/{key}?upload_id=   200 {"key"} or 200 {"error"}
//	GET    /health, /ready                        "OK" (text); /ready is 503 "Shutting down" once draining
//
// Scopes are "k=v;k2=v2" or "_" for none, keys and values of
// A-Za-z0-9_-()$!+', in order ("org=42;project=7" is not
// "project=7;org=42"). Keys may contain slashes; they are percent-decoded,
// and keys with empty, "." or ".." segments or control characters are
// refused. Errors are JSON {"detail":…,"causes":[…]}, causes left out
// when there are none, as objectstore does.
//
// # Metadata
//
// Content-Type (default application/octet-stream); Content-Encoding: zstd
// or gzip (the encodings objectstore accepts; objectstore's Rust client
// sends gzip on request; bodies are stored as sent and served as stored,
// and an Engine reads zstd ones only); x-sn-expiration: manual,
// ttl:<duration> or tti:<duration>, with durations as objectstore's clients
// write them (ParseDuration: "1 days", "30m", "3600 seconds"), rounded up
// to whole seconds ("0s", which the Python client writes for anything under
// a second, is one second) and written back as "1d 2h 3m 4s"; x-sn-origin;
// x-sn-filename; x-snme-<key> custom metadata (keys lowercased). Values
// of those three are percent-decoded as objectstore's clients encode them
// (a '%' that starts no escape is kept as it is) and must be UTF-8 then
// (400 otherwise: the Python client would fail to read them back); they
// go back out encoded the same way. The
// server sets x-sn-time-created, x-sn-time-expires (RFC 3339,
// microseconds) and x-sn-size, and for a zstd object
// x-claimstash-decoded-size (HeaderDecodedSize): the size claimstash's
// backend sent, or, for a body another client sent without one (the
// Python client compresses by default and sends none), the size the
// server counted by decoding it as it stored it (up to MaxCountedSize; a
// body that does not decode is stored as sent, without one). Without it
// an Engine could not bound its decoding, and refused such stashes. GET and HEAD carry Accept-Ranges: bytes and,
// as objectstore serves every object, Content-Disposition: attachment,
// with the filename when there is one (an ASCII quoted string, and RFC
// 8187's filename* for one beyond ASCII). Range is one "bytes=" range
// (several are served whole; another unit or a malformed range is 400);
// one outside the object is 416 with Content-Range: bytes */<size> and no
// body. Objects carry no validator (ETag, Last-Modified), so a Range with
// If-Range beside it is ignored and the object served whole. Header names go out
// lowercase on the wire, as objectstore's Python client compares them.
//
// Expired objects are 404 whether or not anything has removed them. A read
// (GET or HEAD) of a time-to-idle object records the access at most once
// per min(tti/4, 24 h), on drivers with driver.Updater.
//
// # Expiry extension
//
// PATCH takes objectstore's application/json body (the Python client's
// extend_expiry): {"extend_expiry": {"at": "<RFC 3339>"}}, or {"after":
// "<duration>", "from": "now" | "creation"} inside it. It needs the write
// permission. The deadline only moves out, never in: a time-to-live then
// ends at the new deadline (x-sn-expiration reports its duration from the
// creation time), and a time-to-idle object's current deadline moves while
// its idle duration stays. 204 when the deadline covers the request
// (already, or now); 404 without a body for a missing or expired object;
// 409 for one that never expires; 415, 400 and 422 for a body that is not
// JSON of that form. One claimstash extension, which objectstore's own
// servers ignore: a PATCH carrying x-snme-claimstash (MetaAttributes)
// replaces that metadata value, where claimstash's backend keeps its exact
// attributes. The read-modify-write is atomic on drivers with
// driver.Modifier (file, memory, NATS); on a driver with only
// driver.Updater it is a Stat then an update, and on one with neither it
// is 501.
//
// # Storage
//
// The usecase is the driver namespace and the scopes are stash scopes, so
// claimstash's own addresses (objectstore://usecase/org=42/name.<digest>)
// are stored exactly where an Engine over the same driver looks for them.
// Everything the stash grammar cannot hold (usecases with capitals or
// underscores, scope values with ()$!+', more than stash.MaxScopes scopes,
// arbitrary keys) is stored under a SHA-256 of it in a reserved form; the
// mapping is one-to-one, so no path can reach another usecase, scope or
// key. Bodies stream both ways and are never whole in memory: a PUT of a
// new key with a Content-Length goes straight into the driver; a body
// without a length, or one that replaces an object, is spooled to a
// temporary file first (drivers want the size up front, and an upload cut
// short must leave the old object in place). Drivers never overwrite, so a
// replace deletes the old object and then writes the spooled one: a
// concurrent reader may see a 404 in between.
//
// A second claimstash extension: a PUT with If-None-Match: * only creates.
// It is 412 (and nothing is stored; a body of up to 1 MiB is read and
// dropped so that the connection is kept, a larger one, or one the client
// holds back with Expect: 100-continue, is not read) when the key holds an
// object that has not expired, or when a concurrent PUT stores one first; an expired object that nothing has removed yet does not count, and
// nothing of it is left in the object stored over it. Every object
// response says so with x-claimstash-conditional-put: if-none-match
// (HeaderConditionalPut), so that claimstash's backend can write without
// asking first; objectstore's own server ignores the condition and sends
// no such header.
//
// objectstore's resumable uploads are not served: a request carrying
// upload_type= or session= in its query is 501 and touches nothing, which
// objectstore's Python client takes as its cue to send a big object in
// one plain PUT.
//
// # Multipart uploads
//
// objectstore's multipart uploads, as its Python client speaks them
// (initiate_multipart_upload, put_part, list_parts, complete, abort), with
// S3's shape. The initiate's headers are the object's metadata, as for a
// PUT; its answer names the upload (a UUID, for that key and those scopes
// only: with any other it is 404). Parts are numbered 1 to MaxParts, put in
// any order and at once, each with a Content-Length (else 411) and, if the
// client sends one, a Content-MD5 they must match (else 400, nothing
// stored); a part put again is replaced and gets a new etag, and two puts
// of one part number at the same moment are 409 for one of them. A part of
// a zstd upload is a zstd frame the client made. The list is
// {"parts":[{"part_number","etag","last_modified","size"}],"is_truncated",
// "next_part_number_marker"}, at most MaxListParts a page (max_parts,
// part_number_marker). The complete is JSON {"parts":[{"part_number",
// "etag"}]}, ascending: it is 400 when malformed or empty, and otherwise
// 200 even when it fails, with {"error":{"code","message"}} (InvalidPart,
// InvalidPartOrder, EntityTooLarge past the body limit, InternalError),
// since assembling a big object takes a while: after a second the 200 goes
// out and a space follows every second until the answer. The object
// replaces any under the key (copied to a spool first, as a replacing PUT's
// body is, so that a complete that fails partway leaves the old object, and
// the upload to complete again), its time-to-live counts from the complete,
// and a zstd object's decoded size is counted as the parts are copied, as a
// PUT's is: such an object's parts, like those of one that replaces an
// object, go through a spool first. The upload's state (a record and the
// parts) lives in the driver beside the objects of its scopes under
// reserved names no key reaches, and expires MultipartTTL after the
// initiate, so that `claimstash sweep` removes an abandoned upload like any
// expired object. Multipart uploads need a driver with atomic attribute
// updates (driver.Modifier: file, s3, nats and mem have one); over any
// other each request is 501 once its path and token check out, and touches
// nothing.
//
// # Auth
//
// New needs WithAuth (an osauth.Verifier over the public keys) or, for
// local demos, WithoutAuth. A token comes from x-os-auth: Bearer, else
// Authorization: Bearer, else the os_auth query parameter; presigned URLs
// (os_kid, os_timestamp, os_duration, os_sig) authorize GET and HEAD.
// Missing token 400, invalid 401, not permitted 403. See package osauth.
//
// # Batch
//
// A batch body is multipart/form-data; each part is an operation with
// x-sn-batch-operation-kind (get, head, insert, delete) and
// x-sn-batch-operation-key (percent-encoded; an insert without one gets a
// UUID) and, for an insert, the object as its body and its metadata as its
// headers. The answer is multipart/form-data too, as objectstore's is: one
// part per operation, in order, each form-data named "part" with
// x-sn-batch-operation-index and -status (the code and its reason, "201
// Created"). An operation that ran also carries its -kind and -key (the key
// percent-encoded but for letters and digits), the metadata headers of a
// get or head, and a get's object as the body; a get or head of a missing
// object is such an answer, 404 with no body. A failed operation carries
// only the index, the status and objectstore's JSON error as the body. At
// most MaxBatchOperations operations (every one past that is answered
// 413) and MaxBatchInsert bytes per insert (413 for that operation).
//
// # Limits
//
// Bodies (WithMaxBodySize, DefaultMaxBodySize: 413), scopes
// (WithMaxScopes, DefaultMaxScopes: 400), custom metadata (MaxMetadata:
// 431) and, through NewHTTPServer, headers (DefaultMaxHeaderBytes: 431).
// A body that brings no byte for the stall timeout (WithStallTimeout,
// DefaultStallTimeout) is answered 408, and a response whose client takes
// nothing for as long is cut off.
//
// # Serving
//
// Handler mounts the API beside another handler (claimstash's share
// links); Serve runs it on a listener until its context ends, then drains:
// /ready answers 503 for a drain delay, the listener closes, requests in
// flight get a grace period.
package service
