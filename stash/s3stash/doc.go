// Package s3stash is the stash backend for Amazon S3 and S3-compatible
// stores (MinIO, Ceph, Cloudflare R2), over aws-sdk-go-v2. It is where
// production stashes live. Its Scheme is "s3": hand the engine an s3://
// backend URL (the package registers its opener; package claimstash links it
// in), or build a Store over your own *s3.Client with New and add it with
// stash.WithBackend.
//
// # URL
//
//	s3://?region=eu-west-1
//	s3://?endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true&region=us-east-1
//	s3://?bucket=claimstash&prefix=stash%2F&part_size=16777216&concurrency=8
//
// The URL names no bucket: buckets come from the addresses. Its query
// parameters map onto the options of Open (region, endpoint, path_style, max_attempts,
// retry_mode, bucket, prefix, part_size, concurrency, buckets,
// create_buckets, conditional_writes); an unknown parameter, or one given
// twice, is refused.
// Credentials come from the SDK's default chain (config.LoadDefaultConfig:
// AWS_* environment variables, shared config and credentials files, SSO,
// IAM roles), never from the URL. Opening does no I/O. What the SDK logs (its
// warning that it falls back to IMDSv1 while it looks for credentials off
// EC2) goes to slog.Default at debug level, not to standard error.
//
// # Layout
//
// By default an address's namespace is a bucket and its key the object key:
// s3://orders/org=42/order.3f0a… is object "org=42/order.3f0a…" of bucket
// "orders" (after WithPrefix). Namespaces must then be valid bucket
// names (3 to 63 characters, none S3 reserves); any other is
// stash.ErrInvalidAddress before a request is made. With WithBucket, every namespace is
// instead the first key segment in that one bucket: <prefix>orders/org=42/….
//
// # Writes
//
// Keys are content addressed, so writes are conditional: PutObject and
// CompleteMultipartUpload carry If-None-Match: *, and an existing object is
// driver.ErrExists, which the engine counts as success; so the engine
// creates a stash of up to 1 MiB with the PutObject alone, asking with a
// HEAD only when it is refused (driver.ExclusivePutter), or first for
// content the engine stored lately (for a store without conditional
// writes, see Limits). Payloads up to
// PartSize (DefaultPartSize, 8 MiB) take one PutObject; larger ones a
// multipart upload of Concurrency (DefaultConcurrency, 4) parts at a time.
// A payload that is an io.ReaderAt and io.Seeker (a bytes.Reader, a spooled
// *os.File) is sent in place; any other is read into at most Concurrency
// part buffers. Every request carries a checksum of its body in a signed
// header, and S3 refuses bytes that do not match it, so the body itself
// travels as UNSIGNED-PAYLOAD without losing protection. A PutObject carries
// the SHA-256 of its body (x-amz-checksum-sha256), which S3 keeps as the
// object's checksum. For a payload stored as given that is its digest, so
// it is not hashed again: S3 checks the bytes against the address itself,
// and a payload that does not match its digest is stash.ErrIntegrity, with
// nothing stored. Each part of a multipart upload carries its CRC32C
// (x-amz-checksum-crc32c): S3 checks it as it would a SHA-256, at a small
// part of the cost on both sides. A multipart object's stored checksum is
// COMPOSITE (a checksum of the parts' checksums) whichever the algorithm,
// never one of the whole object; for that, every object carries the
// payload's SHA-256 in its metadata (see below), which Retrieve verifies.
// A failed or cancelled upload is aborted; nothing partial is ever visible.
//
// # Reads
//
// Get asks for the first PartSize bytes; for a larger object it streams that
// answer while fetching the following ranges in parallel, at most
// Concurrency parts in memory, handed out in order. The engine verifies the
// whole payload against the digest in its address. Every range after the
// first carries If-Match with the first answer's ETag. If the object is
// written again meanwhile and is now another stash by its attributes
// (digest, stored size, encoding), the read fails at once with an error
// saying the object changed while it was read, which matches
// stash.ErrNotFound, instead of reading on into another object's bytes for
// the digest to refuse at the end. If it is the same stash stored the same
// way (its metadata rewritten by a copy onto itself, as recording a read
// for time-to-idle does, which gives a multipart object a new ETag on
// MinIO; the same bytes put again), the ranges follow the new ETag and the
// read goes on; bytes changed under the same attributes are still refused
// by the digest.
//
// # Attributes and expiry
//
// The engine's attributes (sizes, digest, encoding, content type, caller
// metadata, origin, creation, expiry, time-to-idle) are one JSON value in
// user metadata x-amz-meta-claimstash, with non-ASCII characters escaped.
// S3 bounds user metadata to 2 KiB (MaxMetadataSize), so a stash whose
// metadata would not fit is refused with stash.ErrTooLarge. Updating
// attributes (recording a read for time-to-idle, extending an expiry) copies
// the object onto itself with the metadata replaced (CopyObject, at most
// 5 GiB). Extensions and Sweep's deletions are read-modify-writes
// (driver.Modifier, driver.ConditionalDeleter) under a per-key lock within
// the process: S3 has no compare-and-swap on metadata alone (a metadata copy
// keeps the ETag, the digest of the bytes), so between processes concurrent
// extensions of one stash are last-writer-wins. Objects that other tools wrote under a stash key have no such
// metadata: they are described by their size and time, and still verified.
// They are read as stored, their Content-Encoding not undone: upload the
// payload itself (aws s3 cp payload s3://<namespace>/<name>.<sha256>).
//
// Expiry is recorded on the object and honoured on read: an expired stash is
// stash.ErrExpired even while it is still stored. Deleting it physically is
// the job of a bucket lifecycle rule (Engine.Sweep also works, through
// List, but costs a HEAD per object, as ListObjectsV2 returns no user
// metadata). Expire objects some days after the longest TTL, or TTI plus a
// tenth, that you use: a copy onto itself resets an object's age, so stashes
// still being read live on. Abort abandoned multipart uploads too:
//
//	{"Rules": [{
//	  "ID": "claimstash-expiry",
//	  "Status": "Enabled",
//	  "Filter": {"Prefix": "stash/"},
//	  "Expiration": {"Days": 8},
//	  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}
//	}]}
//
// (aws s3api put-bucket-lifecycle-configuration --bucket B
// --lifecycle-configuration file://rule.json; for MinIO,
// mc ilm rule add --expire-days 8 --prefix stash/ ALIAS/B.)
//
// A Put whose object a lifecycle rule would remove before the stash
// expires, or at once (a rule whose expiration date has passed: MinIO
// answers 404 for such an object right after writing it), fails with an
// error naming the rule and deletes the object: S3 says so in the write's
// answer (x-amz-expiration), so the check costs no request.
//
// List walks WithBuckets, or every bucket ListBuckets returns, or with
// WithBucket that one bucket, under the prefix.
//
// # Share links
//
// Store implements driver.Signer with SigV4 presigned GET URLs, valid for at
// most MaxPresignTTL (7 days), the limit of SigV4. The engine's share link
// is that URL (what `aws s3 presign s3://B/K` prints for the same object)
// with a fragment naming the stash, #stash=<address>&size=…&enc=…, which
// HTTP clients do not send. A URL presigned elsewhere (aws s3 presign, an
// SDK) is read by the engine, and verified, once #stash=<address> is
// appended to it; without a fragment it names no stash and is
// stash.ErrInvalidAddress.
//
// # What raw clients see
//
// An object holds the stored bytes with standard headers, so tools without
// claimstash (aws s3api get-object, the SDKs, a presigned link followed by a
// browser or a script) can tell what they hold: Content-Type is the
// payload's (stash.ContentType; S3's default when none was given), and a
// compressed stash has Content-Encoding: zstd, which HTTP clients that
// support zstd undo themselves (browsers; Python with urllib3 2 and its
// zstd extra; curl --compressed built with zstd) and others leave to
// the caller. Every object also carries the hex SHA-256 of the payload, the
// digest of its address, in its own user metadata header
// x-amz-meta-claimstash-sha256 (DigestMetadataKey), single-part and
// multipart alike: verify a download against it, after undoing
// Content-Encoding. (S3's own checksum covers the stored bytes: the SHA-256
// of a single-part object, a COMPOSITE CRC32C of a multipart one's parts.) A
// presigned link serves the same headers.
//
// # Errors
//
// NoSuchKey, NotFound and NoSuchBucket are stash.ErrNotFound, and so is an
// object that changed while it was read (a later range refused with 412
// PreconditionFailed, see Reads); a conditional write that finds the key
// taken is driver.ErrExists. Every other failure
// (AccessDenied, SlowDown, a timeout, a checksum the store refused) is
// returned wrapped with the operation and object, its cause reachable with
// errors.As (smithy.APIError gives the S3 error code). Failed requests are
// retried by the SDK with exponential backoff and jitter: WithMaxAttempts
// (3 by default) and WithRetryMode (standard, or adaptive to back off further
// under throttling). The client Open builds has no retry quota: the SDK's
// standard retryer draws every retry from one token bucket per client,
// which an outage of a few dozen failed retries empties and which only
// successes refill, so that right after the store comes back every error
// would fail at once, unretried. A client given to New keeps its own
// retryer; to the same effect, give it
// retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None }).
// A ranged read whose body breaks off is fetched again, up to three times.
//
// # Limits
//
// Objects up to the engine's size limit (5 GiB by default); more than
// 10,000 parts grow the part size. A store that does not implement
// If-None-Match on writes (some older S3-compatible ones) either refuses it
// with 501 Not Implemented, an error that names conditional_writes=false,
// or ignores it, and a second write of the same content then replaces the
// first: the same bytes by construction, but the second write's expiry.
// Open such a store WithoutConditionalWrites (URL:
// conditional_writes=false): writes carry no condition, and Put asks with
// a HEAD before every write instead.
package s3stash
