package claimcheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/claimstash/claimstash/stash"
)

// Defaults, in one place.
const (
	// DefaultThreshold: messages whose counted size (body + headers +
	// margin) is above it are offloaded. 256 KiB fits every broker's limit
	// (SNS, the smallest, takes 256 KB) with room to spare.
	DefaultThreshold = 256 << 10
	// DefaultMargin is added to the counted size for headers that are added
	// after the checker runs (tracing, broker-added metadata).
	DefaultMargin = 1 << 10
)

// Mode is the offload policy.
type Mode int

const (
	// Auto offloads messages whose counted size is over the threshold.
	Auto Mode = iota
	// Always offloads every message.
	Always
	// Never offloads nothing (rehydration still works).
	Never
)

// Checker applies the claim-check policy. It is safe for concurrent use.
type Checker struct {
	// What every message reads (Pass, Plain), in one cache line.
	contract  Contract
	mode      Mode
	threshold int
	margin    int
	observer  Observer

	engine      *stash.Engine
	name        func(topic string, h Headers) string
	stashOpts   []stash.CreateOption
	namespace   string
	allow       map[string]map[string]bool // scheme -> namespace set ("*" = any)
	deleteOnAck bool
	onFailure   FailureHandler
	discardAt   int // 0: never discard
	retryDelay  time.Duration
	now         func() time.Time
}

// An Option configures a Checker; pass it to New. Options are made by the
// functions of this package that return Option.
type Option interface {
	apply(*Checker) error
}

type option func(*Checker) error

func (f option) apply(c *Checker) error { return f(c) }

// WithThreshold sets the size above which messages are offloaded
// (DefaultThreshold).
func WithThreshold(n int) Option {
	return option(func(c *Checker) error {
		if n < 0 {
			return errors.New("claimcheck: negative threshold")
		}
		c.threshold = n
		return nil
	})
}

// Threshold returns the size above which messages are offloaded
// (WithThreshold).
func (c *Checker) Threshold() int { return c.threshold }

// WithMargin sets the bytes added to the counted size (DefaultMargin).
func WithMargin(n int) Option {
	return option(func(c *Checker) error {
		if n < 0 {
			return errors.New("claimcheck: negative margin")
		}
		c.margin = n
		return nil
	})
}

// WithMode sets the offload policy (Auto).
func WithMode(m Mode) Option { return option(func(c *Checker) error { c.mode = m; return nil }) }

// Mode returns the offload policy (WithMode), for a transport that offloads
// for limits of its own and must know whether the checker allows it.
func (c *Checker) Mode() Mode { return c.mode }

// WithNamer sets how a stash is named from the message's topic and headers.
// The default is the topic with characters outside the stash name grammar
// replaced by '-' ("message" when there is no topic). The result must pass
// stash.ValidateName.
func WithNamer(f func(topic string, h Headers) string) Option {
	return option(func(c *Checker) error { c.name = f; return nil })
}

// WithStashOptions adds options to every stash the checker creates: TTL,
// compression, content type, origin. Use WithNamespace, not
// stash.InNamespace, to change the namespace, so that consumers built with
// the same options accept it.
func WithStashOptions(opts ...stash.CreateOption) Option {
	return option(func(c *Checker) error { c.stashOpts = append(c.stashOpts, opts...); return nil })
}

// WithNamespace stores stashes in ns (the engine's namespace by default) and
// allows reading from it.
func WithNamespace(ns string) Option {
	return option(func(c *Checker) error {
		if err := stash.ValidateNamespace(ns); err != nil {
			return err
		}
		c.namespace = ns
		return nil
	})
}

// AllowStore lets the consumer read addresses of scheme in namespace ("*"
// for any namespace of that scheme). By default a checker reads only from
// its engine's backends in its own namespace (and inline addresses, which
// carry their data). A scheme or namespace that no address can hold is
// refused (for s3, any bucket name is a namespace: AWS pointers name
// buckets), so that a typo is an error from New, not a store that refuses
// every message.
func AllowStore(scheme, namespace string) Option {
	return option(func(c *Checker) error {
		if err := stash.ValidateScheme(scheme); err != nil {
			return fmt.Errorf("claimcheck: allowed store: %w", err)
		}
		if err := stash.ValidateNamespace(namespace); err != nil && namespace != "*" && !(scheme == schemeS3 && validBucket(namespace)) {
			return fmt.Errorf("claimcheck: allowed store: %w", err)
		}
		if c.allow[scheme] == nil {
			c.allow[scheme] = map[string]bool{}
		}
		c.allow[scheme][namespace] = true
		return nil
	})
}

// WithObserver reports offloads, rehydrations and failures to o. A nil o
// (or a nil *Counters or ObserverFunc) observes nothing.
func WithObserver(o Observer) Option {
	return option(func(c *Checker) error {
		if c.observer = usable(o); c.observer == nil {
			c.observer = nopObserver{}
		}
		return nil
	})
}

// New returns a Checker over engine.
func New(engine *stash.Engine, opts ...Option) (*Checker, error) {
	if engine == nil {
		return nil, errors.New("claimcheck: nil engine")
	}
	c := &Checker{
		engine:     engine,
		threshold:  DefaultThreshold,
		margin:     DefaultMargin,
		name:       DefaultNamer,
		allow:      map[string]map[string]bool{},
		observer:   nopObserver{},
		now:        time.Now,
		retryDelay: DefaultRetryDelay,
	}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		if err := o.apply(c); err != nil {
			return nil, err
		}
	}
	if c.contract == ContractAWSPointer {
		// Without it the checker could neither offload nor read a pointer.
		if _, _, err := c.s3Backend(); err != nil {
			return nil, fmt.Errorf("claimcheck: %w", err)
		}
	}
	if c.namespace == "" {
		c.namespace = engine.Namespace()
	}
	for _, s := range engine.Schemes() {
		if c.allow[s] == nil {
			c.allow[s] = map[string]bool{}
		}
		c.allow[s][c.namespace] = true
	}
	return c, nil
}

// Engine returns the checker's stash engine.
func (c *Checker) Engine() *stash.Engine { return c.engine }

// DefaultNamer names a stash after the topic.
func DefaultNamer(topic string, _ Headers) string {
	if topic == "" {
		return "message"
	}
	b := []byte(topic)
	if len(b) > stash.MaxNameLength {
		b = b[:stash.MaxNameLength]
	}
	for i, ch := range b {
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-' || ch == '.' && i > 0
		if !ok {
			b[i] = '-'
		}
	}
	if b[0] == '-' {
		b[0] = '_'
	}
	return string(b)
}

// Size is what the threshold compares: body plus headers plus the margin.
// It saturates at the largest int instead of wrapping, and counts a
// negative header size as none.
func (c *Checker) Size(body []byte, h Headers) int {
	n, w := len(body), h.WireSize()
	if uint(n|w|c.margin) >= 1<<60 { // a term negative or near the limit
		w = max(w, 0) // n and the margin are never negative
		if w > math.MaxInt-n || c.margin > math.MaxInt-n-w {
			return math.MaxInt
		}
	}
	return n + w + c.margin
}

// ShouldOffload reports whether the policy offloads this message. It reads
// HeaderOffload but does not remove it.
func (c *Checker) ShouldOffload(body []byte, h Headers) (bool, error) {
	offload, _, err := c.shouldOffload(body, h)
	return offload, err
}

// shouldOffload is ShouldOffload that also reports whether h carries
// HeaderOffload, so that Offload looks it up once.
func (c *Checker) shouldOffload(body []byte, h Headers) (offload, override bool, err error) {
	v, override := h.Get(HeaderOffload)
	if IsClaimChecked(h) {
		// Never claim-check twice; but a mark no consumer can read
		// (a relay forwarding a broken reference) is refused here, not
		// sent on for every consumer to fail on.
		return false, override, CheckMark(body, h)
	}
	if override {
		switch v {
		case OffloadAlways:
			return true, true, nil
		case OffloadNever:
			return false, true, nil
		default:
			return false, true, fmt.Errorf("%w: %s", ErrBadOverride, quote(v))
		}
	}
	switch c.mode {
	case Always:
		return true, false, nil
	case Never:
		return false, false, nil
	}
	// Size, with its common case here: it is too big to be inlined.
	if n, w := len(body), h.WireSize(); uint(n|w|c.margin) < 1<<60 {
		return n+w+c.margin > c.threshold, false, nil
	}
	return c.Size(body, h) > c.threshold, false, nil
}

// Offload applies the policy to one outgoing message. If the message is to
// be offloaded, it stores body, and only once the stash is written does it
// return the address as the new body and set the contract headers on h;
// otherwise it returns body and h as they were (less HeaderOffload, if the
// producer set it). A message already claim-checked (a relay forwarding
// what it received) is never offloaded again, and its mark is checked
// first (CheckMark): one no consumer could read is an ErrMalformed error
// and is not sent. address is "" when nothing was offloaded. On error h is
// unchanged and nothing should be sent.
func (c *Checker) Offload(ctx context.Context, topic string, body []byte, h Headers) (out []byte, address string, err error) {
	if c == nil || c.engine == nil || h == nil {
		return nil, "", &Error{Op: "offload", Topic: topic, Err: c.unusable(h)}
	}
	if c.contract == ContractAWSPointer {
		return c.offloadAWS(ctx, topic, body, h)
	}
	offload, override, err := c.shouldOffload(body, h)
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
	start := c.now()
	ev := Event{Op: OpOffload, Topic: topic, Size: int64(len(body)), Headers: h}
	ctx = c.start(ctx, ev)
	name := c.name(topic, h)
	if c.deleteOnAck {
		name = uniqueName(name) // never share a stash that each ack deletes
	}
	opts := append([]stash.CreateOption{stash.InNamespace(c.namespace), stash.NoInline()}, c.stashOpts...)
	s, err := c.engine.Create(ctx, name, body, opts...)
	ev.Duration = c.now().Sub(start)
	if err != nil {
		ev.Err = err
		c.observer.Observe(ctx, ev)
		return nil, "", &Error{Op: "offload", Topic: topic, Err: err}
	}
	address = s.Address.String()
	ev.Address, ev.StoredSize = address, s.StoredSize
	h.Del(HeaderOffload)
	h.Set(HeaderVersion, ContractVersion)
	h.Set(HeaderSize, strconv.Itoa(len(body)))
	c.observer.Observe(ctx, ev)
	return []byte(address), address, nil
}

// Pass is the publishers' fast path. It reports whether an outgoing
// message goes out exactly as it is (the policy keeps its body in the
// message, and there is no HeaderOffload to remove) and, if so, reports it
// to the observer as Offload would (OpPass). It never writes to h. When it
// returns false, call Offload, which offloads, strips the override or
// returns the error. Transports call it first to skip what only a changed
// message needs: a copy of the headers, a context for the stash write, a
// new message.
func (c *Checker) Pass(ctx context.Context, topic string, body []byte, h Headers) bool {
	if c.contract == ContractAWSPointer {
		return false
	}
	offload, override, err := c.shouldOffload(body, h)
	if err != nil || offload || override {
		return false
	}
	c.observer.Observe(ctx, Event{Op: OpPass, Topic: topic, Size: int64(len(body)), Headers: h})
	return true
}

// start calls the observer's Start, if it has one.
func (c *Checker) start(ctx context.Context, ev Event) context.Context {
	if s, ok := c.observer.(Starter); ok {
		return s.Start(ctx, ev)
	}
	return ctx
}

// Plain reports an incoming message that is not claim-checked and is
// delivered as it is (OpPlain) to the checker's observer. Transports call it
// on fast paths that skip Rehydrate for such messages, so that every message
// is counted; Rehydrate reports them itself.
func (c *Checker) Plain(ctx context.Context, topic string, size int, h Headers) {
	if o := c.observer; o != nil { // nil in a zero Checker, which observes nothing
		o.Observe(ctx, Event{Op: OpPlain, Topic: topic, Size: int64(size), Headers: h})
	}
}

// Rehydrate restores one incoming message. For a message that is not
// claim-checked it returns body unchanged and address "". For a claim-checked
// one it checks the address against the stores this checker may read, reads
// and verifies the stash, removes the contract headers from h and returns the
// payload. On error h is unchanged; the error carries the address and
// unwraps to the cause (stash.ErrNotFound, stash.ErrExpired,
// stash.ErrIntegrity, ErrNotAllowed, ...). Never hand the body of a failed
// rehydrate to a handler.
func (c *Checker) Rehydrate(ctx context.Context, topic string, body []byte, h Headers) (out []byte, address string, err error) {
	if c == nil || c.engine == nil || h == nil {
		return nil, "", &Error{Op: "rehydrate", Topic: topic, Err: c.unusable(h)}
	}
	if c.contract == ContractAWSPointer && IsAWSPointer(h) {
		return c.rehydrateAWS(ctx, topic, body, h)
	}
	address, size, ok, err := Reference(body, h)
	if !ok {
		c.observer.Observe(ctx, Event{Op: OpPlain, Topic: topic, Size: int64(len(body)), Headers: h})
		return body, "", nil
	}
	if err != nil && len(body) <= stash.MaxAddressLength && utf8.Valid(body) {
		address = string(body) // for the operator: what the message carried
	}
	start := c.now()
	shown := stash.DisplayAddress(address) // a link without its signature
	ctx = c.start(ctx, Event{Op: OpRehydrate, Topic: topic, Address: shown, Headers: h})
	fail := func(err error) ([]byte, string, error) {
		c.observer.Observe(ctx, Event{Op: OpRehydrate, Topic: topic, Address: shown, Duration: c.now().Sub(start), Err: err, Headers: h})
		return nil, address, &Error{Op: "rehydrate", Topic: topic, Address: address, Err: err}
	}
	if err != nil {
		return fail(err)
	}
	if err := c.Allowed(address); err != nil {
		return fail(err)
	}
	s, err := c.engine.Retrieve(ctx, address)
	if err != nil {
		return fail(err)
	}
	if int64(len(s.Data)) != size {
		return fail(fmt.Errorf("%w: payload is %d bytes, header %s says %d", stash.ErrIntegrity, len(s.Data), HeaderSize, size))
	}
	h.Del(HeaderVersion)
	h.Del(HeaderSize)
	defer restoreOnPanic(h, size)
	c.observer.Observe(ctx, Event{Op: OpRehydrate, Topic: topic, Address: shown, Size: size, StoredSize: s.StoredSize, Duration: c.now().Sub(start), Headers: h})
	return s.Data, address, nil
}

// unusable is the error of Offload and Rehydrate called on a Checker that
// New did not make, or with nil headers (a message without any cannot say
// whether it is claim-checked, nor carry a claim check).
func (c *Checker) unusable(h Headers) error {
	if c == nil || c.engine == nil {
		return errors.New("claimcheck: the checker has no stash engine (it was not made by claimcheck.New)")
	}
	return errors.New("claimcheck: nil headers: pass the message's headers, empty if it has none (MapHeaders{})")
}

// restoreOnPanic puts the contract headers back on h if the observer
// panics after a rehydration removed them, so that the message stays as it
// arrived (the caller has not replaced its body yet): one retried after a
// recovered panic is rehydrated again, never handed on as a plain message
// whose body is an address. The size was read in its one spelling, so
// formatting it gives the header back as it was.
func restoreOnPanic(h Headers, size int64) {
	if r := recover(); r != nil {
		h.Set(HeaderVersion, ContractVersion)
		h.Set(HeaderSize, strconv.FormatInt(size, 10))
		panic(r)
	}
}

// Allowed reports whether this checker may read address: nil, or an error
// matching ErrNotAllowed (or stash.ErrInvalidAddress for one that does not
// parse). Stores are allowed by scheme and namespace (AllowStore); share
// links by the engine's one trust list (its stash.LinkFetcher), so a
// consumer configures trusted origins once.
func (c *Checker) Allowed(address string) error {
	if stash.IsLink(address) {
		// One trust list for links: the engine's LinkFetcher's.
		if err := c.engine.TrustsLink(address); err != nil {
			if errors.Is(err, stash.ErrForbidden) {
				return fmt.Errorf("%w: %w", ErrNotAllowed, err)
			}
			return err
		}
		return nil
	}
	a, err := stash.ParseAddress(address)
	if err != nil {
		return err
	}
	if a.IsInline() {
		return nil
	}
	ns := c.allow[a.Scheme]
	if ns == nil || !(ns[a.Namespace] || ns["*"]) {
		return fmt.Errorf("%w: %s://%s is not a configured store", ErrNotAllowed, a.Scheme, a.Namespace)
	}
	return nil
}

// Acked tells the checker a rehydrated message was acknowledged. With
// DeleteAfterAck it deletes the stash (a stash already gone is not an error);
// otherwise it does nothing. It never deletes what a share link names: that
// stash is the sharer's, and a link is often handed to several consumers.
func (c *Checker) Acked(ctx context.Context, address string) error {
	if address == "" || c == nil || !c.deleteOnAck || stash.IsLink(address) {
		return nil
	}
	start := c.now()
	shown := stash.DisplayAddress(address)
	ctx = c.start(ctx, Event{Op: OpDelete, Address: shown})
	err := c.engine.Delete(ctx, address)
	if err != nil && !errors.Is(err, stash.ErrNotFound) {
		c.observer.Observe(ctx, Event{Op: OpDelete, Address: shown, Err: err})
		return &Error{Op: "delete", Address: address, Err: err}
	}
	c.observer.Observe(ctx, Event{Op: OpDelete, Address: shown, Duration: c.now().Sub(start)})
	return nil
}
