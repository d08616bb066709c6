package claimcheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
)

// The AWS payload-offloading contract, the second wire contract a Checker
// can write (WithContract(ContractAWSPointer)). It is what AWS's extended
// clients for SQS and SNS (Java amazon-sqs-java-extended-client-lib and
// amazon-sns-java-extended-client-lib over payloadoffloading-common, Python
// amazon-sqs-extended-client) write and read, so that a Go service can sit
// beside them in one pipeline, in both directions.
//
// An offloaded message has:
//   - the body, exactly the JSON array
//     ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"B","s3Key":"K"}];
//   - the message attribute AttrExtendedPayloadSize (SQS type Number), the
//     payload's size in bytes (decimal); readers accept the legacy name
//     AttrLegacyPayloadSize too;
//   - every attribute the producer set.
//
// The S3 object K of bucket B holds the payload's bytes exactly, as a plain
// GetObject returns them: no compression, no framing. The extended clients
// offload a message whose body plus attribute size is over 262,144 bytes
// (their default threshold, DefaultThreshold here), or every message in
// their always-through-S3 mode (Always here).
const (
	// AWSPointerClass is the first element of the pointer body.
	AWSPointerClass = "software.amazon.payloadoffloading.PayloadS3Pointer"
	// AttrExtendedPayloadSize carries the payload size in the AWS contract.
	AttrExtendedPayloadSize = "ExtendedPayloadSize"
	// AttrLegacyPayloadSize is the name older extended clients used.
	AttrLegacyPayloadSize = "SQSLargePayloadSize"
	// AWSLegacyPointerClass is the first element of the pointer body that
	// older extended clients wrote (with AttrLegacyPayloadSize); it is
	// read, never written.
	AWSLegacyPointerClass = "com.amazon.sqs.javamessaging.MessageS3Pointer"
)

// Contract names a wire contract a Checker writes.
type Contract int

const (
	// ContractClaimstash is claimstash's own contract (see HeaderVersion):
	// the body is a stash address, the contract is in headers.
	ContractClaimstash Contract = iota
	// ContractAWSPointer is AWS's payload-offloading pointer, for SQS and
	// SNS beside AWS's extended clients. Stashes must be on the engine's
	// s3 backend (package s3stash); a checker with this contract still
	// reads claimstash-contract messages.
	ContractAWSPointer
)

// WithContract sets the wire contract offloaded messages are written in
// (ContractClaimstash). With ContractAWSPointer, the checker also reads AWS
// pointers, from the buckets of the s3 namespaces it may read (its own,
// and those of AllowStore("s3", ...)); New refuses it (stash.ErrUnsupported)
// for an engine without an s3 backend (package s3stash).
func WithContract(k Contract) Option {
	return option(func(c *Checker) error {
		if k != ContractClaimstash && k != ContractAWSPointer {
			return fmt.Errorf("claimcheck: unknown contract %d", k)
		}
		c.contract = k
		return nil
	})
}

// marked reports whether h marks a message this checker rehydrates: one in
// claimstash's contract, or, under ContractAWSPointer, an AWS pointer.
func (c *Checker) marked(h Headers) bool {
	return IsClaimChecked(h) || c.contract == ContractAWSPointer && IsAWSPointer(h)
}

// Contract returns the wire contract the checker writes.
func (c *Checker) Contract() Contract { return c.contract }

// AWSPointer is the reference an AWS pointer message carries.
type AWSPointer struct {
	Bucket string `json:"s3BucketName"`
	Key    string `json:"s3Key"`
}

// MarshalAWSPointer returns the message body for p, in the form the
// extended clients write and parse.
func MarshalAWSPointer(p AWSPointer) []byte {
	b, _ := json.Marshal([]any{AWSPointerClass, p}) // strings only: cannot fail
	return b
}

// IsAWSPointer reports whether h marks an AWS pointer message (either size
// attribute is set).
func IsAWSPointer(h Headers) bool {
	_, ok := h.Get(AttrExtendedPayloadSize)
	if !ok {
		_, ok = h.Get(AttrLegacyPayloadSize)
	}
	return ok
}

// ParseAWSPointer reads the AWS contract from a message without fetching
// anything. It returns ok == false for a message without either size
// attribute, and an error matching ErrMalformed for one that has it but
// whose body or size is not the contract's.
func ParseAWSPointer(body []byte, h Headers) (p AWSPointer, size int64, ok bool, err error) {
	sv, ok := h.Get(AttrExtendedPayloadSize)
	name := AttrExtendedPayloadSize
	if !ok {
		if sv, ok = h.Get(AttrLegacyPayloadSize); !ok {
			return AWSPointer{}, 0, false, nil
		}
		name = AttrLegacyPayloadSize
	}
	size, perr := strconv.ParseInt(strings.TrimSpace(sv), 10, 64)
	if perr != nil || size < 0 {
		return AWSPointer{}, 0, true, fmt.Errorf("%w: attribute %s is %s", ErrMalformed, name, quote(sv))
	}
	if len(body) > 4*stash.MaxAddressLength {
		return AWSPointer{}, 0, true, fmt.Errorf("%w: body is %d bytes, too long for an S3 pointer", ErrMalformed, len(body))
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(body, &arr); err != nil || len(arr) != 2 {
		return AWSPointer{}, 0, true, fmt.Errorf("%w: body is not an S3 pointer", ErrMalformed)
	}
	var class string
	if err := json.Unmarshal(arr[0], &class); err != nil || class != AWSPointerClass && class != AWSLegacyPointerClass {
		return AWSPointer{}, 0, true, fmt.Errorf("%w: body is not an S3 pointer", ErrMalformed)
	}
	if p, err = decodePointer(arr[1]); err != nil {
		return AWSPointer{}, 0, true, err
	}
	if err := validPointer(p); err != nil {
		return AWSPointer{}, 0, true, err
	}
	return p, size, true, nil
}

// decodePointer reads the pointer object as Jackson reads it into the
// extended clients' PayloadS3Pointer: the field names exactly (encoding/json
// would match them case-insensitively), each at most once (it would keep the
// last), both strings, nothing else. Its errors quote and cut what the
// message carried and name no Go type.
func decodePointer(raw json.RawMessage) (AWSPointer, error) {
	var p AWSPointer
	malformed := func(what string) (AWSPointer, error) {
		return AWSPointer{}, fmt.Errorf("%w: S3 pointer %s", ErrMalformed, what)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return malformed("is not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return malformed("is not an object")
		}
		var field *string
		switch name {
		case "s3BucketName":
			field = &p.Bucket
		case "s3Key":
			field = &p.Key
		default:
			return malformed("has an unknown field " + quote(name))
		}
		if seen[name] {
			return malformed("names " + name + " twice")
		}
		seen[name] = true
		tok, err = dec.Token()
		v, ok := tok.(string)
		if err != nil || !ok {
			return malformed("field " + name + " is not a string")
		}
		*field = v
	}
	// The closing brace; json.Unmarshal into the outer array has already
	// checked that the object is well-formed JSON.
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return malformed("is not an object")
	}
	return p, nil
}

// validBucket reports whether b is in S3's bucket name grammar, as far as
// a pointer needs it checked: 3 to 63 lowercase letters, digits, dots and
// hyphens.
func validBucket(b string) bool {
	return len(b) >= 3 && len(b) <= 63 && !strings.ContainsFunc(b, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.')
	})
}

func validPointer(p AWSPointer) error {
	if !validBucket(p.Bucket) {
		return fmt.Errorf("%w: S3 pointer bucket %s", ErrMalformed, quote(p.Bucket))
	}
	// encoding/json reads invalid UTF-8 and lone surrogates as U+FFFD: a key
	// holding it may name another object than the message did.
	if p.Key == "" || len(p.Key) > 1024 || !utf8.ValidString(p.Key) || strings.ContainsFunc(p.Key, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return fmt.Errorf("%w: S3 pointer key %s", ErrMalformed, quote(p.Key))
	}
	// S3 reads "." and ".." literally, but a proxy or an S3-compatible
	// store that normalizes the path would not: the object read would be
	// outside the prefix pointerStash checked.
	for seg := range strings.FieldsFuncSeq(p.Key, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: S3 pointer key %s has a dot segment", ErrMalformed, quote(p.Key))
		}
	}
	return nil
}

// schemeS3 is s3stash's scheme (s3stash.Scheme), named here so that this
// package does not import the AWS SDK.
const schemeS3 = "s3"

// locator is what the AWS contract needs of the s3 backend: where a stash
// key of a namespace lives (s3stash.Store has it).
type locator interface {
	Locate(ns, key string) (bucket, objectKey string)
}

func (c *Checker) s3Backend() (driver.Driver, locator, error) {
	d, ok := c.engine.Backend(schemeS3)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the AWS pointer contract needs an s3 backend", stash.ErrUnsupported)
	}
	l, ok := d.(locator)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the s3 backend cannot locate its objects", stash.ErrUnsupported)
	}
	return d, l, nil
}

// awsPointerFor returns the pointer to an s3 stash.
func (c *Checker) awsPointerFor(address string) (AWSPointer, error) {
	a, err := stash.ParseAddress(address)
	if err != nil {
		return AWSPointer{}, err
	}
	if a.Scheme != schemeS3 {
		return AWSPointer{}, fmt.Errorf("%w: the AWS pointer contract needs stashes on s3, this one went to %s", stash.ErrUnsupported, a.Scheme)
	}
	_, l, err := c.s3Backend()
	if err != nil {
		return AWSPointer{}, err
	}
	b, k := l.Locate(a.Namespace, a.Key())
	return AWSPointer{Bucket: b, Key: k}, nil
}

// offloadAWS is Offload in the AWS contract.
func (c *Checker) offloadAWS(ctx context.Context, topic string, body []byte, h Headers) ([]byte, string, error) {
	// Never claim-check twice: shouldOffload keeps a claim-checked message,
	// and an AWS pointer is kept here, once its mark is checked as
	// shouldOffload checks claimstash's (CheckMark); the override goes in
	// every case.
	offload, override, err := false, false, error(nil)
	if IsAWSPointer(h) {
		_, override = h.Get(HeaderOffload)
		err = CheckMark(body, h)
	} else {
		offload, override, err = c.shouldOffload(body, h)
	}
	if err != nil {
		return nil, "", &Error{Op: "offload", Topic: topic, Err: err}
	}
	if !offload {
		if override {
			h.Del(HeaderOffload)
		}
		c.observer.Observe(ctx, Event{Op: OpPass, Topic: topic, Size: int64(len(body)), Headers: h})
		return body, "", nil
	}
	if _, _, err := c.s3Backend(); err != nil {
		return nil, "", &Error{Op: "offload", Topic: topic, Err: err}
	}
	start := c.now()
	ev := Event{Op: OpOffload, Topic: topic, Size: int64(len(body)), Headers: h}
	ctx = c.start(ctx, ev)
	// The object must be the payload as it is: AWS's clients read it with
	// a plain GetObject.
	opts := append([]stash.CreateOption{stash.InNamespace(c.namespace), stash.NoInline()}, c.stashOpts...)
	opts = append(opts, stash.Compress(stash.CompressionNone))
	s, err := c.engine.Create(ctx, c.name(topic, h), body, opts...)
	ev.Duration = c.now().Sub(start)
	if err == nil {
		ev.Address, ev.StoredSize = s.Address.String(), s.StoredSize
		var p AWSPointer
		if p, err = c.awsPointerFor(ev.Address); err == nil {
			h.Del(HeaderOffload)
			h.Set(AttrExtendedPayloadSize, strconv.Itoa(len(body)))
			c.observer.Observe(ctx, ev)
			return MarshalAWSPointer(p), ev.Address, nil
		}
	}
	ev.Err = err
	c.observer.Observe(ctx, ev)
	return nil, "", &Error{Op: "offload", Topic: topic, Address: ev.Address, Err: err}
}

// rehydrateAWS is Rehydrate for a message marked with either size
// attribute. Errors and events name the object as "s3://bucket/key"; the
// address returned is "", so Acked never deletes an AWS pointer's object
// (DeleteAfterAck does not apply: fan-out and redelivery need it, and a
// bucket lifecycle rule reclaims it).
func (c *Checker) rehydrateAWS(ctx context.Context, topic string, body []byte, h Headers) ([]byte, string, error) {
	p, size, _, err := ParseAWSPointer(body, h)
	address := ""
	if err == nil {
		address = "s3://" + p.Bucket + "/" + p.Key
	}
	start := c.now()
	shown := display(address) // a key that is not printable, quoted
	ctx = c.start(ctx, Event{Op: OpRehydrate, Topic: topic, Address: shown, Headers: h})
	fail := func(err error) ([]byte, string, error) {
		c.observer.Observe(ctx, Event{Op: OpRehydrate, Topic: topic, Address: shown, Duration: c.now().Sub(start), Err: err, Headers: h})
		return nil, address, &Error{Op: "rehydrate", Topic: topic, Address: address, Err: err}
	}
	if err != nil {
		return fail(err)
	}
	data, stored, err := c.readPointer(ctx, p, size)
	if err != nil {
		return fail(err)
	}
	ext, hasExt := h.Get(AttrExtendedPayloadSize)
	legacy, hasLegacy := h.Get(AttrLegacyPayloadSize)
	h.Del(AttrExtendedPayloadSize)
	h.Del(AttrLegacyPayloadSize)
	defer func() {
		// As restoreOnPanic: the message stays as it arrived.
		if r := recover(); r != nil {
			if hasExt {
				h.Set(AttrExtendedPayloadSize, ext)
			}
			if hasLegacy {
				h.Set(AttrLegacyPayloadSize, legacy)
			}
			panic(r)
		}
	}()
	c.observer.Observe(ctx, Event{Op: OpRehydrate, Topic: topic, Address: shown, Size: size, StoredSize: stored, Duration: c.now().Sub(start), Headers: h})
	return data, "", nil
}

// readPointer reads the object p names, if it is in a bucket this checker
// may read: the bucket (and key prefix) of one of its s3 namespaces.
func (c *Checker) readPointer(ctx context.Context, p AWSPointer, size int64) ([]byte, int64, error) {
	d, l, err := c.s3Backend()
	if err != nil {
		return nil, 0, err
	}
	ns, key, ok := c.pointerStash(l, p)
	if !ok {
		return nil, 0, fmt.Errorf("%w: s3://%s is not a configured store", ErrNotAllowed, p.Bucket)
	}
	if limit := c.engine.MaxSize(); size > limit {
		return nil, 0, fmt.Errorf("%w: %d bytes, over the limit of %d", stash.ErrTooLarge, size, limit)
	}
	rc, attrs, err := d.Get(ctx, ns, key)
	if err == nil && rc == nil {
		err = fmt.Errorf("%w: the backend answered without the object's bytes", stash.ErrIntegrity)
	}
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	if attrs != nil {
		if attrs.Encoding != driver.EncodingIdentity {
			return nil, 0, fmt.Errorf("%w: object is %s-encoded, AWS pointers name plain objects", stash.ErrUnsupported, attrs.Encoding)
		}
		if attrs.Expired(c.now()) {
			return nil, 0, stash.ErrExpired
		}
	}
	// Read at most one byte more than announced: a lying size costs no
	// more memory than the bytes that actually arrived.
	data, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(data)) != size {
		return nil, 0, fmt.Errorf("%w: object is %s bytes, attribute says %d", stash.ErrIntegrity, sizeWord(len(data), size), size)
	}
	if attrs != nil && attrs.Digest != "" && len(attrs.Digest) == 2*sha256.Size {
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != attrs.Digest {
			return nil, 0, fmt.Errorf("%w: object does not match its digest", stash.ErrIntegrity)
		}
	}
	return data, int64(len(data)), nil
}

func sizeWord(got int, want int64) string {
	if int64(got) > want {
		return "more than " + strconv.FormatInt(want, 10)
	}
	return strconv.Itoa(got)
}

// pointerStash maps p back to a namespace and key of the s3 backend that
// this checker may read.
func (c *Checker) pointerStash(l locator, p AWSPointer) (ns, key string, ok bool) {
	try := func(ns string) (string, string, bool) {
		b, prefix := l.Locate(ns, "")
		if b != p.Bucket || !strings.HasPrefix(p.Key, prefix) || len(p.Key) == len(prefix) {
			return "", "", false
		}
		return ns, p.Key[len(prefix):], true
	}
	for ns := range c.allow[schemeS3] {
		if ns == "*" {
			continue
		}
		if ns, key, ok := try(ns); ok {
			return ns, key, true
		}
	}
	if c.allow[schemeS3]["*"] && stash.ValidateNamespace(p.Bucket) == nil {
		// Any namespace: only where namespaces are buckets.
		if b, _ := l.Locate(p.Bucket, ""); b == p.Bucket {
			return try(p.Bucket)
		}
	}
	return "", "", false
}
