package stash

import (
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

// A Stash is a stored payload and what is known about it. Create and
// Retrieve fill Data; Stat and Open do not.
type Stash struct {
	// Address locates the stash; Address.String() is what travels in a
	// message.
	Address Address
	// Size is the payload's length as given; StoredSize what the backend
	// holds after encoding.
	Size, StoredSize int64
	// Encoding of the stored bytes (zstd or identity). Reads undo it.
	Encoding    driver.Encoding
	ContentType string
	Metadata    map[string]string
	Origin      string
	Created     time.Time
	// ExpiresAt is the time-to-live deadline (zero: none).
	ExpiresAt time.Time
	// TTI is the time-to-idle (zero: none), counted from LastAccess.
	TTI        time.Duration
	LastAccess time.Time
	// Data is the payload.
	Data []byte

	// addr, when not empty, is what Address formatted to when the
	// stash was made (see String).
	addr string
}

// Name is the stash's name, without the digest.
func (s *Stash) Name() string { return s.Address.Name }

// Namespace is the stash's namespace.
func (s *Stash) Namespace() string { return s.Address.Namespace }

// String is the address. A stash that Create made returns the string it
// built for its key as long as Address still formats to it (compared piece
// by piece, without building another).
func (s *Stash) String() string {
	if s.addr != "" && formatsTo(&s.Address, s.addr) {
		return s.addr
	}
	return s.Address.String()
}

// formatsTo reports whether a, not inline, formats to str.
func formatsTo(a *Address, str string) bool {
	n := len(a.Scheme)
	at := n + len("://") + len(a.Namespace) + 1
	return !a.IsInline() && len(str) > at && str[:n] == a.Scheme && str[n:n+3] == "://" &&
		str[n+3:at-1] == a.Namespace && str[at-1] == '/' && a.isKey(str[at:])
}

// Expiry is when the stash expires if it is not read again: the earlier of
// its TTL deadline and LastAccess plus TTI. Zero means never.
func (s *Stash) Expiry() time.Time {
	exp := s.ExpiresAt
	if s.TTI > 0 {
		last := s.LastAccess
		if last.IsZero() {
			last = s.Created
		}
		if idle := last.Add(s.TTI); exp.IsZero() || idle.Before(exp) {
			exp = idle
		}
	}
	return exp
}

func stashFrom(addr Address, a *driver.Attributes) *Stash {
	s := stashOf(addr, a)
	return &s
}

func stashOf(addr Address, a *driver.Attributes) Stash {
	return Stash{
		Address:     addr,
		Size:        a.Size,
		StoredSize:  a.StoredSize,
		Encoding:    a.Encoding,
		ContentType: a.ContentType,
		Metadata:    a.Metadata,
		Origin:      a.Origin,
		Created:     a.Created,
		ExpiresAt:   a.ExpiresAt,
		TTI:         a.TTI,
		LastAccess:  a.LastAccess,
	}
}
