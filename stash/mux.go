package stash

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/claimstash/claimstash/stash/driver"
)

// DriverOpener opens a driver from a backend URL such as "file:///var/lib/x"
// or "s3://?region=eu-west-1". Openers refuse query parameters they do not
// know.
type DriverOpener func(ctx context.Context, u *url.URL) (driver.Driver, error)

// The scheme registry is the package's only state. Backend packages register
// in init, without I/O.
var mux = struct {
	sync.RWMutex
	openers map[string]DriverOpener
}{openers: map[string]DriverOpener{}}

// RegisterScheme makes OpenDriver and WithBackendURL open URLs of scheme with
// opener. Backend packages call it in init for their Scheme; the drivers the
// opener returns must report the same Scheme. It panics if the scheme is
// registered twice, is outside the address grammar (ValidateScheme) or is
// "inline" (which is built in), like database/sql.Register.
func RegisterScheme(scheme string, opener DriverOpener) {
	mux.Lock()
	defer mux.Unlock()
	if scheme == SchemeInline || ValidateScheme(scheme) != nil {
		panic("stash: RegisterScheme: reserved or invalid scheme " + scheme)
	}
	if _, dup := mux.openers[scheme]; dup {
		panic("stash: RegisterScheme called twice for " + scheme)
	}
	mux.openers[scheme] = opener
}

// Schemes lists the schemes that have an opener registered.
func Schemes() []string {
	mux.RLock()
	defer mux.RUnlock()
	out := make([]string, 0, len(mux.openers))
	for s := range mux.openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// OpenDriver opens a backend from its URL, by the opener registered for its
// scheme. The backend's package must be linked in: import it, or use the
// one-call setup of package claimstash, which links the standard backends.
//
// A URL that does not parse is ErrInvalidAddress, a scheme with no opener
// ErrUnsupported; either message names the scheme (quoted and cut) and
// never the rest of the URL, which may hold a password.
func OpenDriver(ctx context.Context, rawURL string) (driver.Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, invalid("%s does not parse: %s", backendURL(rawURL), parseReason(err))
	}
	mux.RLock()
	opener, ok := mux.openers[u.Scheme]
	mux.RUnlock()
	if !ok {
		if u.Scheme == "" {
			return nil, fmt.Errorf("%w: backend URL with no scheme: want scheme://..., as in file:///var/lib/claimstash (%s)", ErrUnsupported, registered())
		}
		return nil, fmt.Errorf("%w: no backend for URL scheme %s in this program (%s)", ErrUnsupported, quoteCut(u.Scheme), registered())
	}
	d, err := opener(ctx, u)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("stash: the opener for %s:// returned no driver and no error", u.Scheme)
	}
	if d.Scheme() != u.Scheme {
		_ = d.Close()
		return nil, fmt.Errorf("stash: the opener for %s:// returned a driver for %s://", u.Scheme, d.Scheme())
	}
	return d, nil
}

// backendURL names a backend URL that does not parse by its scheme alone,
// when it has one that is well formed.
func backendURL(raw string) string {
	scheme, _, ok := strings.Cut(raw, ":")
	if ok && ValidateScheme(strings.ToLower(scheme)) == nil {
		return "backend URL with scheme " + quoteCut(strings.ToLower(scheme))
	}
	return "backend URL"
}

// parseReason is why net/url refused a URL, without the URL (its error
// repeats it whole) and without its package name.
func parseReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(err.Error(), "net/url: ")
	if len(msg) > 80 {
		msg = msg[:80] + "…"
	}
	for i := 0; i < len(msg); i++ {
		if msg[i] < ' ' || msg[i] == 0x7f {
			return strconv.QuoteToASCII(msg)
		}
	}
	return msg
}

// registered lists the schemes this program can open, for an error.
func registered() string {
	s := Schemes()
	if len(s) == 0 {
		return "no backends registered"
	}
	return "registered: " + strings.Join(s, ", ")
}

// quoteCut quotes s for an error message, cut to its first 40 bytes.
func quoteCut(s string) string {
	if len(s) > 40 {
		return strconv.QuoteToASCII(s[:40]) + "…"
	}
	return strconv.QuoteToASCII(s)
}
