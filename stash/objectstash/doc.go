// Package objectstash is a stash backend that talks objectstore's v1 HTTP
// API: claimstash's own server (package service, `claimstash serve`) or
// Sentry's objectstore. Producers and consumers then need a token for the
// service instead of credentials for the store behind it.
//
// # Addresses
//
// Stashes in an objectstore service have the scheme "objectstore":
//
//	objectstore://<usecase>/<scope>=<value>/…/<name>.<digest>
//
// The namespace is the usecase. The scope segments, in order, are the
// object's scopes (objectstore's path form "org=42;project=1337", or "_"
// for none), and the last segment, "name.<digest>", is the object key. So
// objectstore://attachments/org=42/project=1337/report.3f0a… is
// PUT /v1/objects/attachments/org=42;project=1337/report.3f0a…. Scope
// values with dots are valid in stash addresses but not in objectstore:
// they are ErrInvalidAddress.
//
// # Backend URL
//
//	objectstore://host:port[/base]?kid=relay&key_file=/etc/claimstash/relay.key
//
// names the endpoint https://host:port/base (plaintext=true: http). Auth is
// a token signed from an Ed25519 key (kid, key_file: the <kid>.key that
// `claimstash keygen` writes), scoped to the request's usecase and scopes
// and granting only the permission it needs, reused by requests with the
// same usecase, scopes and permission for a quarter of its lifetime; or a
// static token (token_file). Other parameters: ca_file, token_lifetime (1m),
// connect_timeout (100ms), retries (3 connection retries), read_timeout
// (none), parallel_above (64 MiB), part_size (8 MiB), concurrency (4). The
// Go constructor New takes the same settings as options.
//
// # Behaviour
//
// Put sends the stored bytes as they are, with Content-Encoding: zstd when
// the engine compressed them, and the content type, origin, expiry
// (x-sn-expiration: the time-to-idle, or the time-to-live left) and
// metadata as objectstore headers, so objectstore's own clients read them;
// the exact driver attributes travel besides, as custom metadata
// "claimstash" (base64url JSON), because the service sets its own creation
// time. An existing object is not replaced (driver.ErrExists): objectstore's
// PUT would replace it, so Put asks with a HEAD first. claimstash's server
// says in every object response that it honours If-None-Match: * on a PUT
// (a 412 when the key holds an object); after such a response Put sends
// the condition instead of the HEAD, one round trip fewer, and the check
// is the server's own, atomic against concurrent writers. Either way Put
// is its own check, so the engine creates a stash of up to 1 MiB without
// a HEAD of its own first (driver.ExclusivePutter). Get streams an object of up to parallel_above bytes
// in one GET; a larger one streams those while the rest comes in parallel
// ranges. Delete of a missing object is ErrNotFound (a HEAD first).
//
// # Expiry
//
// The service enforces expiry itself. The Store is a driver.Updater over
// objectstore's expiry extension (PATCH with {"extend_expiry": {"at":
// <deadline>}}), so a repeated create extends a stash's expiry and a read
// records its access for time-to-idle: the deadline only moves out, on the
// service's own guarantee (objectstore's; claimstash's over a store that
// is a driver.Modifier), so concurrent extensions never undo one another.
// The exact attributes go along as x-snme-claimstash, which claimstash's
// server stores and objectstore's ignores; Stat and Get take the service's
// deadline wherever it is later than that copy (beyond the
// 2 s the services round to), so an extension made by another client, or
// by this one against objectstore's server, is reported. Objectstore keeps
// a time-to-idle's duration on an extension: a repeated create with a
// longer time-to-idle moves the current deadline, not the idle duration.
// Against a service without the extension (405 or 501), or one that
// refuses it for the object or the token (409, 400, 403: a reader's token;
// the service records reads for time-to-idle itself), UpdateAttributes is
// ErrUnsupported, and the engine logs that it cannot extend and keeps the
// expiry the stash has.
//
// objectstore's v1 API has no listing, so the Store is no driver.Lister
// and Engine.Sweep passes over it (it logs that it did). That is correct,
// not a gap: expiry belongs to the service, which never serves an expired
// object, whether or not anything has removed it yet. objectstore's
// server deletes expired objects itself; claimstash's server reclaims
// their space when `claimstash sweep` runs over the store it serves.
//
// # Share links
//
// With a signing key, share links are objectstore presigned GETs
// of the object's path, scoped stashes too (os_kid, os_timestamp,
// os_duration, os_sig; at most 7 days); a plain HTTP GET of one answers the
// stored bytes (labelled Content-Encoding: zstd when compressed), and an
// engine with a links.Fetcher trusting the service's origin reads and
// verifies it like any share link. Without a signing key SignURL is
// ErrUnsupported.
//
// # Errors
//
// Responses map onto the driver sentinels: 404 is ErrNotFound, 400
// ErrInvalidAddress, 413 and 431 ErrTooLarge, and 405, 501, 409, 400 or
// 403 to an expiry extension ErrUnsupported; anything else is a
// *StatusError with the service's detail, redirects too (objectstore
// sends none, and the Store follows none: it would hand the request's
// token to the host named). A read whose bytes disagree with what the
// service said of them (a body longer or shorter than x-sn-size or its
// Content-Range, a range other than the one asked for, another version of
// the object, a whole object answering a later range) is ErrIntegrity.
//
// A zstd object another client stored (objectstore's Python client
// compresses by default) carries no decoded size among its metadata;
// claimstash's server counts it and sends it as
// x-claimstash-decoded-size, which Get and Stat read, so that the engine
// can bound its decoding. objectstore's own server sends no such size:
// Get then reads the stored bytes into memory as they arrive (the object
// is not streamed; at most 256 MiB of them, or ErrTooLarge) and decodes
// them once to count them, up to stash.DefaultMaxSize, and Stat does the
// same; the engine checks the size
// against its own limit and the digest as for any other stash.
package objectstash
