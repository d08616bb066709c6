// Package stash stores payloads too large for a message and gives back a
// short, content-addressed address to send instead: the storage half of a
// claim check. A producer calls Engine.Create (or CreateFrom for a stream)
// and puts the address in the message; a consumer calls Engine.Retrieve (or
// Open, to stream) with it and gets the exact bytes back, verified.
//
// # Addresses
//
// An address is a URI in kstash's grammar, with optional ordered scopes
// (Sentry objectstore's usecase + scopes) between namespace and name:
//
//	scheme://namespace[/key=value...]/name.<digest>
//	inline://namespace[/key=value...]/name?data=<url-escaped base64>
//
// The digest is the lowercase hex SHA-256 of the payload as the caller gave
// it, so the same payload under the same name and namespace always has the
// same address and a second create writes nothing. A 32-hex digest is
// kstash's MD5 form, accepted for reading (Address.DigestAlgorithm tells
// them apart). Namespaces are DNS-label-like ([a-z0-9-], at most
// MaxNamespaceLength), names are [A-Za-z0-9_.-] not starting with a dot or
// hyphen (at most MaxNameLength), scope keys are [a-z][a-z0-9_]* and values
// [A-Za-z0-9_.-] other than "." and "..". Addresses arrive in messages and
// are untrusted: ParseAddress is strict and never panics, and anything it
// accepts is a relative path inside one store. Small payloads travel in the
// address itself (inline, up to DefaultInlineMax encoded characters).
//
// # Backends
//
// A backend is a driver.Driver, chosen by the address's scheme. The core
// names none: each backend package exports its Scheme, registers an opener
// for it in init (RegisterScheme, the package's only state, as Go CDK's URL
// mux), and its drivers report that scheme (driver.Driver.Scheme), so an
// address can only be read by the kind of store that wrote it. Add backends
// with WithBackend (a driver you built) or WithBackendURL (opened by URL
// through the registry, OpenDriver). The standard ones:
//
//	mem://                      package memstash: process-local, for tests
//	file:///var/lib/claimstash  package filestash: a directory, atomic writes
//	s3://?region=eu-west-1      package s3stash: buckets are namespaces
//	nats://host:4222            package natsstash: JetStream object stores
//
// Opening by URL needs the backend's package linked in: import it, or use
// package claimstash (the module root), whose one-call setup links all four.
// A backend URL that cannot work (it does not parse, a host where none
// belongs, a port outside 1-65535, an unknown or malformed parameter) is
// refused when it is opened, before any request, with an error matching
// ErrInvalidAddress; a scheme with no backend in the program is
// ErrUnsupported, and its message lists the schemes registered.
// ParseAddress consults no registry: any scheme in the grammar parses, and an
// engine with no backend for it refuses it with an error matching both
// ErrUnsupported and ErrInvalidAddress.
//
// Backends are tried in the order they were added: a payload goes to the
// first whose MaxPayload it fits, after inline when inline is enabled. A new
// backend is one package that exports its Scheme, registers it in init and
// runs the conformance suite in package stashtest.
//
// # Options and defaults
//
// Engine options (WithBackend, WithBackendURL, WithNamespace, WithScopes,
// WithInlineMax, WithCompressFloor, WithMaxSize, WithDefaultTTL,
// WithDefaultTTI, WithOrigin, WithLinkSigner, WithLinkFetcher, WithLogger,
// WithClock, WithTempDir) have their defaults in
// one block of Default* constants: DefaultNamespace "default",
// DefaultInlineMax 100 encoded characters, DefaultCompressFloor 4 KiB,
// DefaultMaxSize 5 GiB, DefaultTTL none, DefaultShareTTL 15 minutes (a
// share link's lifetime when Share is given none), DefaultSpoolMemory 8 MiB
// (the most CreateFrom holds in memory; larger streams are spooled to
// temporary files). Whatever WithInlineMax says, a payload travels inline
// only if its address stays within the 64 KiB ParseAddress accepts. Per-call options (CreateOption: InNamespace, InScopes, TTL, TTI,
// NoExpiry, Compress, ContentType, Metadata, Origin, NoInline) override them
// for one stash; they have plain names, engine options start with With.
// Options of every package in this module are values of an interface type
// made by functions, so one passed where it does not apply does not
// compile.
//
// Payloads at or above the compression floor are stored zstd-compressed
// when that saves at least an eighth (CompressionAuto; CompressionNone and
// CompressionZstd override it). Every compressed payload is stored as one
// zstd frame with its content size in the header, whatever its size, so
// that readers that decode only the first frame (python-zstandard's
// one-shot decompress, Rust's async-compression without multiple members)
// read all of it. From 256 KiB, Create compresses the payload on a helper
// goroutine while it hashes it (when GOMAXPROCS allows), and from 768 KiB
// the encoder compresses 512 KiB sections of the one frame on GOMAXPROCS
// goroutines.
// Stored bytes of several frames, as other writers may store them, are
// read as one stream. Decoding is bounded by the recorded size, and frames
// asking for more memory than the engine ever writes are refused.
// Expiry is time-to-live from creation, time-to-idle from the last read, or
// none; an expired stash reads as ErrExpired before anything deletes it, and
// Sweep reclaims the space of backends that can list their contents.
//
// # Share links
//
// Share returns a short-lived URL that anyone holding it can GET without
// credentials. Backends that presign natively (driver.Signer: S3) sign their
// own; for the others the engine uses its WithLinkSigner signer (package
// stash/links' HMAC, whose handler serves them). Retrieve and Open accept
// share links wherever they accept addresses, fetched by the WithLinkFetcher
// fetcher (the one list of trusted origins) and verified against the digest
// the link names: the engine keeps the integrity check, and a link is read
// through the same path as an address. Without a fetcher no link is fetched
// (ErrForbidden).
//
// # Errors
//
// Errors are *Error values naming the operation and address, which unwrap
// to sentinels for errors.Is: ErrNotFound, ErrExpired (which also matches
// ErrNotFound), ErrIntegrity (stored bytes that do not match the digest;
// no data is returned, and Open's reader fails instead of reporting io.EOF),
// ErrInvalidAddress, ErrUnsupported (no backend for a scheme, an operation
// a backend lacks) and ErrTooLarge (over WithMaxSize or a backend's limit,
// or stored bytes that decode to more than their recorded size, which match
// ErrIntegrity too). Errors are wrapped once: the driver classifies and says
// what its store answered, the engine adds the operation and the address:
//
//	stash: retrieve file://orders/invoice.3f0a…: not found: filestash: openat: no such file or directory
//
// WithHooks observes an engine: a DriverHook wraps every backend's driver
// (keeping its optional capabilities), an OpHook is told of every
// operation and its outcome. Package otelstash is such a hook, for
// OpenTelemetry traces and metrics.
package stash
