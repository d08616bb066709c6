// Package driver defines the interface that stash backends implement.
//
// It is for backend authors. Users hold a *stash.Engine, which does the
// hashing, compression, integrity checks, expiry and error wrapping once, for
// every backend; a driver is little more than the storage calls. New drivers
// run the conformance suite in package stash/stashtest.
//
// Drivers classify their failures, as Go CDK drivers do with an ErrorCode:
// an error for which errors.Is matches one of the sentinels below
// (ErrNotFound above all) means that category; anything else is a backend
// failure. A driver's error says what its store answered, prefixed with the
// driver's package name, and does not name the namespace or key: the engine
// wraps it once, with the operation and the address (see stash.Error).
package driver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"time"
)

// Sentinel errors. Package stash re-exports them under the same names, so a
// driver and its users compare against the same values.
var (
	// ErrNotFound: no object under that key (or no such namespace).
	ErrNotFound = errors.New("stash: not found")
	// ErrExpired: the object exists but its expiry has passed. It matches
	// ErrNotFound too (see IsExpired).
	ErrExpired error = expiredError{}
	// ErrIntegrity: the bytes read do not match the digest they are stored under.
	ErrIntegrity = errors.New("stash: integrity check failed")
	// ErrInvalidAddress: an address or name that does not parse or is not allowed.
	ErrInvalidAddress = errors.New("stash: invalid address")
	// ErrUnsupported: the backend does not implement the operation or option.
	ErrUnsupported = errors.New("stash: unsupported")
	// ErrTooLarge: a payload over a configured limit, or a decoded size over
	// the recorded one (a decompression bomb).
	ErrTooLarge = errors.New("stash: too large")
	// ErrForbidden: a share link that is refused (see Verifier). It matches
	// ErrInvalidAddress too: such a link is an address that is not allowed.
	ErrForbidden error = forbiddenError{}
	// ErrExists: returned by Put when the key already holds an object. The
	// engine treats it as success: keys are content addressed.
	ErrExists = errors.New("stash: already exists")
)

type forbiddenError struct{}

func (forbiddenError) Error() string { return "stash: share link refused" }

// Is makes errors.Is(ErrForbidden, ErrInvalidAddress) true.
func (forbiddenError) Is(target error) bool { return target == ErrInvalidAddress }

type expiredError struct{}

func (expiredError) Error() string { return "stash: expired" }

// Is makes errors.Is(ErrExpired, ErrNotFound) true: an expired stash is gone
// as far as a reader is concerned.
func (expiredError) Is(target error) bool { return target == ErrNotFound }

// Encoding names how the stored bytes are encoded.
type Encoding string

const (
	// EncodingIdentity: stored as given.
	EncodingIdentity Encoding = ""
	// EncodingZstd: stored zstd-compressed.
	EncodingZstd Encoding = "zstd"
	// EncodingGzip: stored gzip-compressed, as objectstore's clients may
	// send an object. The engine never writes it and does not decode it
	// (ErrUnsupported); the service stores and serves it as sent.
	EncodingGzip Encoding = "gzip"
)

// Attributes is what a driver stores beside the bytes and hands back on Get
// and Stat, unchanged. Drivers persist every field; they interpret none of
// them except to support their own expiry (for example S3 lifecycle rules).
type Attributes struct {
	// Size is the length of the payload as the caller gave it (decoded).
	Size int64 `json:"size"`
	// StoredSize is the length of the bytes the driver holds (encoded).
	StoredSize int64 `json:"stored_size"`
	// Encoding of the stored bytes.
	Encoding Encoding `json:"encoding,omitempty"`
	// Digest is the hex SHA-256 of the decoded payload.
	Digest string `json:"digest"`
	// ContentType of the payload, if known.
	ContentType string `json:"content_type,omitempty"`
	// Metadata is caller-defined string key-values.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Origin says who created the stash (a service name, a host).
	Origin string `json:"origin,omitempty"`
	// Created is when the stash was first written.
	Created time.Time `json:"created"`
	// ExpiresAt is the time-to-live deadline; zero means none.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// TTI is the time-to-idle: the stash expires TTI after LastAccess.
	// Zero means none.
	TTI time.Duration `json:"tti,omitempty"`
	// LastAccess is the last read (or the creation) for time-to-idle.
	LastAccess time.Time `json:"last_access,omitzero"`
}

// Expired reports whether the attributes say the object has expired at now.
func (a *Attributes) Expired(now time.Time) bool {
	if !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt) {
		return true
	}
	if a.TTI > 0 {
		last := a.LastAccess
		if last.IsZero() {
			last = a.Created
		}
		if !now.Before(last.Add(a.TTI)) {
			return true
		}
	}
	return false
}

// Driver is a backend. Namespace is the first component of an address (a
// directory, a bucket); key is the rest of its path: optional scope segments
// then "name.<digest>", for example "org=42/project=1/orders.3f0a…". Both
// arrive validated: a driver may use them as path components as they are.
//
// Implementations are safe for concurrent use.
type Driver interface {
	// Scheme is the address scheme the driver serves ("file", "s3", ...),
	// the Scheme constant of its package. The engine reads addresses of that
	// scheme from it and from nothing else.
	Scheme() string
	// Put stores size bytes from r under key, with attrs, atomically: a
	// concurrent or later Get sees all of it or nothing, and a failed or
	// cancelled Put leaves nothing readable. If key already exists, Put
	// returns ErrExists (or nil) without replacing it.
	Put(ctx context.Context, namespace, key string, r io.Reader, size int64, attrs *Attributes) error
	// Get opens the stored bytes. The reader yields the encoded bytes exactly
	// as they were put; the engine decodes and verifies them.
	Get(ctx context.Context, namespace, key string) (io.ReadCloser, *Attributes, error)
	// Stat returns the attributes without the bytes.
	Stat(ctx context.Context, namespace, key string) (*Attributes, error)
	// Delete removes the object. Deleting a missing key returns ErrNotFound.
	Delete(ctx context.Context, namespace, key string) error
	// Close releases the driver's resources.
	Close() error
}

// Updater is an optional capability: replace the attributes of an existing
// object without rewriting its bytes. The engine uses it to record reads for
// time-to-idle and to extend the expiry when the same content is created
// again. Drivers without it keep the attributes they were put with.
type Updater interface {
	UpdateAttributes(ctx context.Context, namespace, key string, attrs *Attributes) error
}

// BytesKeeper is an optional capability of stores that hold objects in
// memory: KeepsBytes reports that Put keeps the bytes of an OwnedBytes
// reader as they are instead of copying what it reads. The engine then
// copies a payload for the store on another core while it hashes it, and
// hands the copy to Put as an OwnedBytes. Every write still goes through
// Put, so a wrapper that embeds such a store and overrides Put sees each
// one; a Put handed any other reader reads and copies as always.
//
// A store that reports KeepsBytes also never changes the bytes of an
// object once stored: what the readers of its Get write out (io.WriterTo)
// is memory nothing writes to, so the engine hashes it as it is while
// another core copies it for the caller.
type BytesKeeper interface {
	KeepsBytes() bool
}

// OwnedBytes is a reader of bytes that nothing else holds or changes,
// which the engine passes to Put for a BytesKeeper.
type OwnedBytes struct {
	bytes.Reader
	data []byte
}

// NewOwnedBytes returns a reader of data, which the caller gives up.
func NewOwnedBytes(data []byte) *OwnedBytes {
	o := &OwnedBytes{data: data}
	o.Reset(data)
	return o
}

// Owned returns the bytes for the driver to keep, or nil once anything has
// been read from the reader (the bytes left are then no longer all of it).
func (o *OwnedBytes) Owned() []byte {
	if o.Len() != len(o.data) {
		return nil
	}
	return o.data
}

// Lister is an optional capability used by Sweep: call fn for every object
// in every namespace the driver holds. Returning an error from fn stops the
// walk with that error.
type Lister interface {
	List(ctx context.Context, fn func(namespace, key string, attrs *Attributes) error) error
}

// A LinkRequest names what a share link is for: the object under Key in
// Namespace, whose address has Scheme, readable until Expires.
type LinkRequest struct {
	Scheme, Namespace, Key string
	Expires                time.Time
}

// Signer makes share links: URLs through which anyone holding one can GET
// (and HEAD) one object without credentials until it expires. A driver
// whose store presigns natively implements it as an optional capability
// (S3's SigV4 URLs, an objectstore service's Ed25519 presigned URLs); such a
// URL serves the stored bytes as they are. Package stash/links implements it
// with HMAC-signed URLs for the others, served (decoded) by its handler. A
// signer that cannot sign for an object returns an error matching
// ErrUnsupported.
type Signer interface {
	SignURL(ctx context.Context, r LinkRequest) (string, error)
}

// Verifier is the other half of a Signer, on the server that serves the
// links: it checks a request for a link's URL (method and URL as received;
// HEAD is allowed wherever GET is) at time now. It returns nil for a link to
// serve, an error matching ErrForbidden for one that does not verify (a
// tampered path or query, an unknown or retired key), and one matching
// ErrExpired for a good link past its expiry. Verifiers choose their key by
// the key id the link carries.
type Verifier interface {
	VerifyURL(method string, u *url.URL, now time.Time) error
}

// ExclusivePutter is an optional capability of drivers whose Put is its
// own existence check: a write the store refuses when the key holds an
// object (S3's and claimstash's objectstore server's If-None-Match: *), or
// one that asks the store first in the same call. Where ExclusivePut
// reports true for a payload of size bytes, the engine's Create puts at
// once and looks at what is stored (Stat) only when Put answers ErrExists,
// instead of asking with a Stat before every Put: one round trip fewer for
// every new stash, at the cost, for content stored already (unless the same
// engine stored it lately, when it asks first), of encoding it and sending
// what the store reads before it refuses. Drivers report true
// only where a Stat costs a round trip and a refused Put of size bytes
// costs little more.
//
// A driver that reports true returns ErrExists, never nil, for a key that
// holds an object, and never replaces it.
type ExclusivePutter interface {
	ExclusivePut(size int64) bool
}

// Modifier is an optional capability: a read-modify-write of an object's
// attributes that is atomic with respect to every other ModifyAttributes,
// DeleteIf and Delete of the same key, by the backend's own guarantee (a
// compare-and-swap on a revision, a lock). The engine uses it, where a
// driver has it, to extend expiry monotonically under concurrent Creates
// and to record reads without undoing an extension.
type Modifier interface {
	// ModifyAttributes reads the attributes of key and calls fn with them.
	// If fn returns nil, nothing is written and ModifyAttributes returns
	// what fn saw; otherwise it stores what fn returned, provided nothing
	// changed the attributes since they were read, calling fn again on
	// what is there now if something did. It returns the attributes
	// stored. A missing key (also one deleted meanwhile) is ErrNotFound;
	// a deleted object is never revived.
	ModifyAttributes(ctx context.Context, namespace, key string, fn func(have *Attributes) *Attributes) (*Attributes, error)
}

// ConditionalDeleter is an optional capability: delete an object only if
// its current attributes satisfy cond, checked and deleted atomically with
// respect to ModifyAttributes of the same key. Engine.Sweep uses it so that
// a stash renewed by a concurrent Create after it was listed is kept.
type ConditionalDeleter interface {
	// DeleteIf reports whether it deleted key. A missing key is
	// ErrNotFound.
	DeleteIf(ctx context.Context, namespace, key string, cond func(have *Attributes) bool) (bool, error)
}
