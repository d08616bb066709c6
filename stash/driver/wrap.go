package driver

//go:generate go run ./internal/gencaps

// Wrap returns outer, a driver that wraps inner and serves some of its
// methods itself, with exactly the optional capabilities of inner
// (Updater, Modifier, ConditionalDeleter, Lister, Signer, Verifier,
// BytesKeeper, ExclusivePutter). The engine finds them by type assertion,
// so a wrapper must neither hide one that inner has nor claim one that it
// lacks. Each capability of inner is served by outer's own method where
// outer has one, and by inner's otherwise; of outer's other methods, only
// the Driver ones are served. The result's Unwrap method returns inner.
//
// A stash.DriverHook returns its wrapper through Wrap.
func Wrap(outer, inner Driver) Driver {
	return withCapabilities(wrapping{Driver: outer, inner: inner}, outer, inner)
}

// wrapping is what every result of Wrap holds: the outer driver, whose
// Driver methods it serves, and the inner one, which Unwrap returns.
type wrapping struct {
	Driver
	inner Driver
}

// Unwrap returns the driver that was wrapped.
func (w wrapping) Unwrap() Driver { return w.inner }
