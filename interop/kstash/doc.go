// Package kstash reads and writes the stashes of kstash, the Python
// library whose address grammar claimstash took, so that a Go service can
// sit in a pipeline whose Python side uses kstash: it reads what Python
// wrote and writes what Python reads.
//
// kstash (0.2) stores a value v as msgpack(v), with msgpack-python's
// defaults, under <name>.<md5(msgpack(v))>; on S3 the bucket is the
// namespace. Small values travel in the address itself:
//
//	s3://stashes/context.c6ab205fe81dcad3eec3ab48b96b0618
//	mem://default/object.34472d91b2f84052bf26d4eaa862ef86
//	inline://stashes/colorcode?data=DA%3D%3D      (quote_plus(base64(msgpack(12))))
//
// A claimstash engine stores payloads of its own, SHA-256 addressed, maybe
// zstd-compressed; a kstash stash is none of that. So this package is a
// layer over the engine rather than a mode of it: Store.Create encodes the
// value and writes the raw msgpack bytes through the engine's backend
// (driver.Driver.Put, which on S3 is a PutObject with If-None-Match: *)
// under the kstash key, and Store.Retrieve reads through Engine.Retrieve,
// which already verifies a 32-hex digest as md5, then decodes. The engine
// is unchanged; nothing in stash imports this package.
//
// # Values
//
// Marshal encodes as msgpack-python's packb with its defaults
// (use_bin_type=True), byte for byte; Unmarshal decodes as its unpackb, and
// gives back these Go types:
//
//	Python        msgpack                  Go, encoded from            Go, decoded as
//	None          nil                      nil                         nil
//	bool          true, false              bool                        bool
//	int           smallest of fixint,      int, int8..int64,           int64 (uint64 above
//	              uint8..64, int8..64      uint, uint8..uint64         math.MaxInt64)
//	float         float 64                 float64, float32 (widened)  float64 (float 32 too)
//	str           str (fixstr, str8..32)   string (valid UTF-8)        string
//	bytes         bin 8/16/32              []byte, [N]byte             []byte (a copy)
//	list, tuple   array                    []any, any other slice or   []any
//	                                       array
//	dict          map, in insertion order  Map; map[string]any (and    Map
//	                                       other string-keyed maps)
//	                                       in sorted key order
//
// Map is an ordered list of pairs, since the order of a dict is part of its
// bytes and so of its md5 and address; a Go map is written in sorted key
// order so that its address is at least stable. Map keys are str or bytes,
// as unpackb accepts by default (strict_map_key); a repeated key keeps its
// first position and its last value, as in a dict. Named types of these
// kinds, and pointers to them, are encoded as the underlying value. Any
// other Go value (a struct, a channel, an int-keyed map, a non-UTF-8
// string) is ErrUnsupportedValue, and so are containers nested deeper than
// MaxDepth (1024, as deep as msgpack-python unpacks), pointers counting as
// a level (so a value that points at itself is refused, not followed).
//
// Stored bytes arrive from elsewhere and are untrusted. Unmarshal decodes
// over tinylib/msgp's bounds-checked zero-copy readers: truncated input,
// trailing bytes, reserved or extension types (kstash values have none;
// unpackb would give an ExtType), str that is not UTF-8, other key types,
// nesting beyond MaxDepth, and lengths that the remaining bytes cannot back
// are ErrMalformed, which errors.Is also matches to stash.ErrIntegrity. It
// never panics, and never allocates for a declared length before checking
// that the bytes present can hold it beside the items the enclosing lists
// and maps still expect (each item takes at least one byte), so memory
// stays in proportion to the input, however deep: at most 40 bytes of Go memory
// per input byte (an interface slot per one-byte item; a Pair and an index
// entry per map entry), measured by TestDecodedMemory and, for counts
// that lie at every level of nesting, TestNestedLiesAllocateOnce.
//
// # Stashes
//
// New(engine, options...) makes a Store over an engine with the backends
// kstash uses (s3stash for s3://, memstash for mem://; an s3stash.Store
// without WithBucket or WithPrefix, since kstash's layout is bucket = namespace,
// key = <name>.<md5>). Options: WithScheme (the backend Create writes to,
// the engine's first by default), WithNamespace (DefaultNamespace,
// "default"), WithInlineMax (DefaultInlineMax, 100 base64 characters, at
// most MaxInlineMax; negative disables inline), WithClock. Per call: InNamespace, NoInline.
//
// Create(ctx, name, value) returns kstash's address for the value: inline
// when base64(msgpack(value)) fits the inline limit, otherwise
// scheme://namespace/name.<md5>, stored uncompressed so a raw kstash reader
// sees exactly msgpack(value). claimstash records its attributes in S3 user
// metadata (x-amz-meta-claimstash), which a kstash reader ignores. An
// object already under the key is not overwritten; it is read back and must
// hold the same bytes, uncompressed: one that a claimstash writer stored
// zstd-compressed, with its attributes, is stash.ErrIntegrity, since a kstash
// reader would get the compressed bytes. Retrieve reads such an object (the
// engine decompresses it and the md5 is checked on what it holds).
//
// Retrieve(ctx, address) accepts a kstash address or a kstash share link
// and returns the decoded value, after checking the stored bytes against the
// md5 in the address (kstash does not check; this package does): a mismatch
// is stash.ErrIntegrity. A share link is a plain presigned S3 URL whose path
// ends with <name>.<md5>, without a fragment; it is fetched only from the
// origins the engine trusts (a links.Fetcher given with stash.WithLinkFetcher), with the engine's
// limits, and verified against that md5. An expired link is
// stash.ErrExpired before any request, boto3's links included: boto3
// presigns with S3's signature version 2 by default, whose expiry (Expires)
// this package checks. Share(ctx, address, ttl) makes such
// links, through the backend's presigner (S3 only).
//
// Addresses are parsed by stash.ParseAddress, whose namespaces are
// lowercase DNS labels, as S3 bucket names are; kstash also allows
// uppercase letters and underscores in the namespaces of mem:// and
// inline:// addresses, and such addresses are refused here with
// stash.ErrInvalidAddress.
//
// md5 detects corruption, not forgery: two different values can be made to
// share an md5. Create refuses to adopt an existing object whose bytes
// differ, but a reader cannot tell a forged stash from a real one. Use the
// engine's SHA-256 addresses where writers are not trusted.
//
// # The pipeline recipe
//
// kstash's own pattern is a JSON message whose fields hold stash addresses:
// {"context": "s3://stashes/context.c6ab…", "command": "gen_report"}. A Go
// consumer decodes the JSON and calls Retrieve on the fields that hold
// addresses; a Go producer calls Create and puts Stash.String() in the
// field, and a Python consumer calls kstash.retrieve on it. See the Example
// (Pipeline) for both directions.
//
// # Errors
//
// Errors start with "kstash:", name the operation and address (share links
// without their signature), and wrap the stash sentinels (stash.ErrNotFound,
// stash.ErrExpired, stash.ErrIntegrity, stash.ErrInvalidAddress,
// stash.ErrForbidden, stash.ErrUnsupported, stash.ErrTooLarge) or this
// package's ErrMalformed and ErrUnsupportedValue, for errors.Is.
package kstash
