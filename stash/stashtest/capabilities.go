package stashtest

import "github.com/claimstash/claimstash/stash/driver"

// Capabilities names the optional capabilities d has, one letter each, in
// this order: U (driver.Updater), M (driver.Modifier), D
// (driver.ConditionalDeleter), L (driver.Lister), S (driver.Signer), V
// (driver.Verifier), B (driver.BytesKeeper) and X
// (driver.ExclusivePutter). A wrapper's test compares the wrapper's with
// those of the driver it wraps.
func Capabilities(d driver.Driver) string {
	s := ""
	for _, c := range []struct {
		letter string
		has    bool
	}{
		{"U", is[driver.Updater](d)}, {"M", is[driver.Modifier](d)}, {"D", is[driver.ConditionalDeleter](d)},
		{"L", is[driver.Lister](d)}, {"S", is[driver.Signer](d)}, {"V", is[driver.Verifier](d)},
		{"B", is[driver.BytesKeeper](d)}, {"X", is[driver.ExclusivePutter](d)},
	} {
		if c.has {
			s += c.letter
		}
	}
	return s
}

func is[T any](d driver.Driver) bool {
	_, ok := d.(T)
	return ok
}
