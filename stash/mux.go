package stash

import (
	"context"
	"fmt"
	"net/url"
	"sort"
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
func OpenDriver(ctx context.Context, rawURL string) (driver.Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("stash: backend URL: %w", err)
	}
	mux.RLock()
	opener, ok := mux.openers[u.Scheme]
	mux.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: no backend registered for scheme %q (missing import?)", ErrUnsupported, u.Scheme)
	}
	d, err := opener(ctx, u)
	if err != nil {
		return nil, err
	}
	if d.Scheme() != u.Scheme {
		_ = d.Close()
		return nil, fmt.Errorf("stash: the opener for %s:// returned a driver for %s://", u.Scheme, d.Scheme())
	}
	return d, nil
}
