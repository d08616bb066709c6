// Package natsstash is a stash backend on the NATS JetStream object store
// (jetstream.ObjectStore): where messages already travel over NATS, the
// stashes need no other infrastructure.
//
// # Layout
//
// Each namespace is a bucket named BucketPrefix + namespace
// (DefaultBucketPrefix, "claimstash_", unless configured), created on the
// first Put with the configured replicas, storage type, stream compression
// and TTL. An existing bucket is used as it is: its settings are the
// operator's. Reads never create buckets; a missing bucket is
// stash.ErrNotFound. The prefix must satisfy the bucket name rules,
// [A-Za-z0-9_-]+; namespaces always do.
//
// Each stash is one object named by its key, the address's path after the
// namespace: scope segments then name.<digest>, for example
// "org=42/orders.3f0a…". Object names are free-form (the object store
// base64-encodes them into subjects), so keys are used unchanged; a key of
// up to stash.MaxAddressLength bytes makes a subject of about 1.4 KiB, well
// under the server's limits. The attributes (driver.Attributes) travel as
// JSON in the object's metadata under MetadataKey; objects put by other
// tools without them are served too, and still verified against the digest
// in the address.
//
// # URLs
//
//	nats://host:port[,host2:port]?bucket_prefix=app_&replicas=3&storage=file&ttl=168h
//
// with stash.WithBackendURL or stash.OpenDriver (the package registers its
// Scheme, "nats"; package claimstash links it in). User information in the URL (user:password@ or token@) is
// passed to nats.go. Parameters, all optional, map onto the options of New:
//
//	bucket_prefix  WithBucketPrefix   ([A-Za-z0-9_-]+)
//	replicas       WithReplicas       (1 to 5)
//	storage        WithStorage        (file or memory)
//	ttl            WithBucketTTL      (a Go duration, "72h")
//	chunk_size     WithChunkSize      (bytes)
//	compression    S2Compression      (true or false: S2 on the stream)
//	read_timeout   WithReadTimeout    (a Go duration, "1m")
//	name           the connection name    (default "claimstash")
//	creds          a credentials file     (nats.UserCredentials)
//
// Unknown or repeated parameters are refused. A store opened by URL owns
// its connection, which reconnects forever, and Close closes it; New takes
// an existing jetstream.JetStream and leaves its connection to the caller.
//
// # Guarantees and limits
//
// Put streams the payload in chunks (128 KiB unless ChunkSize says
// otherwise, so payloads far over the server's max_payload fit); the
// object's info is published after the last chunk and the Put returns once
// JetStream has acknowledged every message. A failed, short, overlong or
// cancelled Put leaves nothing readable, and its chunks are purged; when
// JetStream refused a chunk but took the info after it (a bucket full to
// its MaxBytes does), Put withdraws that record too, so that no Stat
// reports an object without its bytes. Put looks the key up first and
// returns driver.ErrExists if it is there, so the engine creates a stash
// of up to 1 MiB without a lookup of its own (driver.ExclusivePutter).
// Puts of one key are serialised
// within a Store; two processes putting the same key at the same moment
// may both write, and the second replaces the first with identical bytes
// (keys are content addressed); a read of the first in flight at that
// moment reads on from the second (the stored bytes' size and SHA-256 in
// both records are checked to be the same; other bytes are
// stash.ErrNotFound).
//
// There is no per-object TTL in the object store. A stash's TTL and TTI are
// recorded in its attributes and enforced by the engine on every read
// (stash.ErrExpired), and Engine.Sweep deletes expired stashes (this
// package implements driver.Lister over the buckets with its prefix). The
// bucket TTL (WithBucketTTL, the stream's MaxAge) is the physical backstop:
// JetStream removes everything written longer ago, whatever the stash's own
// expiry, so keep it longer than the longest stash lifetime you create.
// It counts from the write of each message: a stash whose attributes were
// rewritten later (driver.Updater, used for time-to-idle) may keep its
// info while its chunks age out, and then reads as stash.ErrNotFound.
//
// UpdateAttributes rewrites only the object's info, with a compare-and-set
// on its sequence, so it never revives an object deleted meanwhile.
// ModifyAttributes (driver.Modifier: the engine's expiry extensions and
// time-to-idle) and DeleteIf (driver.ConditionalDeleter: Sweep) use the same
// compare-and-set as a read-modify-write, retried when another writer got
// there first, so concurrent Creates in any number of processes never lose
// one another's extensions and Sweep never deletes a stash renewed after it
// was listed.
//
// The size of an object is bounded only by the bucket's and the account's
// JetStream limits (and the engine's WithMaxSize). Reads stream: the
// reader reports a mismatch with the object store's own SHA-256 as
// stash.ErrIntegrity (the engine checks its own digest as well), and it
// fails instead of hanging when no chunk comes before the context's
// deadline (a timeout error) or, without one, for WithReadTimeout
// (matching nats.ErrTimeout). Without a deadline a read lasts as long as
// chunks keep coming: the client ends every read after its API timeout
// (five seconds) then, so the store opens the object again each
// ReadTimeout, skipping what was read, which costs a second transfer of
// that part for reads slower than ReadTimeout. A read whose object is
// deleted meanwhile is stash.ErrNotFound once the chunks it holds run out.
//
// Like every NATS request, a call in flight when the connection drops can
// be lost and then waits for its context: give calls a deadline, and retry
// (or Nak) on failure.
//
// # What raw clients see
//
// Tools without claimstash read the stored bytes: the payload itself, or
// its zstd frame when the stash was compressed (the attributes' "encoding"
// says which). With the NATS CLI:
//
//	nats object ls claimstash_orders                          # the keys, [scopes/]name.<digest>
//	nats object get -O out claimstash_orders 'org=42/orders.3f0a…'
//	nats object info claimstash_orders 'org=42/orders.3f0a…'  # SHA-256 of the stored bytes, metadata
//
// The object store's own digest (SHA-256=… in the object's info) is that of
// the stored bytes, so for a stash stored as given it is the address
// digest. As on S3, an object carries the headers Content-Type (the
// payload's, when one was given) and, for a compressed stash,
// Content-Encoding: zstd; nats object info and nats-py's ObjectInfo.headers
// show them. nats object info abbreviates long metadata values; the whole
// MetadataKey entry is in the object's info message, the last message on
// subject $O.<bucket>.M.<name in base64url> of stream OBJ_<bucket>
// (nats stream get OBJ_<bucket> --last-for … --json). nats-py's ObjectInfo
// (2.16) has no metadata field at all: read that message with
// js.get_last_msg. Objects put by such tools (nats object put --name
// <key>, nats-py's put) into the namespace's bucket are read by the engine
// as stored (their headers are not consulted: put the payload itself, not
// its zstd) and verified against their address.
//
// # Errors
//
// Missing objects, buckets and streams (jetstream.ErrObjectNotFound,
// ErrBucketNotFound, ErrStreamNotFound) match stash.ErrNotFound; corrupt
// objects match stash.ErrIntegrity; the client's error stays in the chain.
// Messages start with "natsstash:".
package natsstash
