// Package claimcheck is the claim-check policy shared by every transport:
// when a message body is offloaded to a stash, how a claim-checked message is
// marked on the wire, and how it is offloaded and rehydrated.
//
// A Checker wraps a *stash.Engine. On send, Offload stores a body whose
// counted size (body + headers + a margin) is over the threshold and returns
// its address as the new body, with the contract headers set; the address is
// returned only after the stash is written. On receive, Rehydrate checks the
// address against the stores the consumer may read, reads and verifies the
// stash and restores the body. Messages under the threshold pass through
// byte-for-byte, headers too.
//
// # Wire contract (version 1)
//
// A claim-checked message's body is one stash address; the header
// "claimstash-version" (HeaderVersion) marks it and carries the contract
// version, "1"; "claimstash-size" (HeaderSize) carries the original body
// size in bytes, in one spelling only: ASCII digits, no sign, no space, no
// leading zero ("0" for an empty body), within an int64; any other value, or
// none, is ErrMalformed, and a payload of another length is
// stash.ErrIntegrity. A version other than "1" is ErrUnsupportedVersion;
// a higher one is a newer producer's, which DiscardAfter never discards
// (upgrade consumers before producers).
// The producer's headers are kept. A producer may set "claimstash-offload"
// (HeaderOffload) to "always" or "never" on a message; the checker removes
// it before sending. Reference reads the contract
// without fetching anything.
//
// # AWS's pointer contract
//
// WithContract(ContractAWSPointer) makes a checker write, and read, what
// AWS's SQS and SNS extended clients do (Java, Python): the body
// ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"B","s3Key":"K"}]
// and the Number attribute "ExtendedPayloadSize" (AttrExtendedPayloadSize;
// the legacy "SQSLargePayloadSize" and its class are read too), with the
// payload as a plain S3 object. The stashes must go to the engine's s3
// backend (package s3stash), which writes them uncompressed and unframed;
// a pointer names the object s3stash keeps the stash in: bucket and key as
// s3stash's Locate gives them (by default the bucket is the namespace and
// the key is the prefix, if any, then the address's path after the
// namespace: "orders.<sha256>"). A pointer written by another client
// (a random key) is read only from the bucket, and under the key prefix, of
// an s3 namespace this checker may read (a key with a "." or ".." segment,
// which a normalizing proxy would move out of it, is refused), and checked
// against its size attribute; objects that claimstash wrote are checked against their digest
// too. The transports for it are ccsqs and ccsns. DeleteAfterAck never
// deletes an AWS pointer's object.
//
// # Failures
//
// Errors are *Error values that carry the topic and address (named once)
// and unwrap to the cause: the stash package's sentinels (stash.ErrNotFound,
// stash.ErrExpired, stash.ErrIntegrity, ...) or this package's
// (ErrNotAllowed, ErrUnsupportedVersion, ErrMalformed, ErrBadOverride).
//
// The failure policy lives here and nowhere else. Every transport receives
// through RehydrateInPlace, which rehydrates a message in place or, when its
// stash cannot be read, asks Decide what it means: Redeliver (every
// transient failure, and by default every failure), Handled (the
// OnRehydrateFailure handler took a permanent one: to a poison topic, say)
// or Discard (a permanent one under DiscardAfter). Transports only translate
// the Decision into their ack, nack, term or commit; none has failure
// options of its own, and none ever hands the address to a handler as if it
// were the payload. DeleteAfterAck, applied by Acked, is the one other
// consumer-side policy.
//
// # Observing
//
// WithObserver reports every message to an Observer: offloads, rehydrations
// and deletes after ack with their sizes, latency and error, and messages
// that pass through (OpPass on the way out, OpPlain on the way in: the
// transports hand every message to Offload and Rehydrate), so an offload
// ratio can be computed.
// An Observer that is also a Starter is told before the stash is touched,
// and its context is the one the stash operation runs with: that is how
// package otelstash opens its spans. Counters and SlogObserver are two small
// observers; Observers fans out to several.
//
// # Defaults
//
//	threshold       DefaultThreshold (256 KiB), counting body + headers + margin
//	margin          DefaultMargin (1 KiB)
//	mode            Auto
//	stash name      the topic (DefaultNamer)
//	namespace       the engine's
//	readable stores the engine's backends in that namespace, and inline
//	share links     those the engine's stash.LinkFetcher trusts: none without one
//	delete on ack   off: stashes live until their TTL (DeleteAfterAck, which
//	                also gives each offloaded message a stash of its own, so
//	                duplicate bodies never share one that an ack deletes)
//	on failure      Redeliver (OnRehydrateFailure, DiscardAfter)
//	retry delay     DefaultRetryDelay (5 s), where the transport can delay (WithRetryDelay)
package claimcheck
