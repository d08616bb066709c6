// Package settings is the one parser of each configuration value that
// claimstash.OpenEnv reads from the environment and the claimstash command
// line reads from its flags (and the same variables): both call these
// functions, so a setting copied from one to the other builds the same
// engine.
package settings

import (
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/dustin/go-humanize"
)

// The Parse functions' errors say what is wrong with the value and name no
// setting: the caller puts the name of the variable or flag the value came
// from in front (EnvOptions writes "claimstash: CLAIMSTASH_MAX_SIZE=...: ").

// ParseBackends reads a backend setting (CLAIMSTASH_BACKEND, the command
// line's --backend): backend URLs, comma-separated, tried in order, each
// trimmed of surrounding space; empty entries are skipped. A comma separates
// two backends only where the text after it starts a new one (scheme://, an
// absolute directory, or a path starting with a dot), so a comma inside a
// URL's parameters stays in it:
// s3://?buckets=a,b is one backend.
//
// A directory is the file backend over exactly that directory:
// /var/lib/claimstash is file:///var/lib/claimstash (cleaned, and escaped
// as a URL path, so /srv/a b is file:///srv/a%20b and a ? or # in it is part
// of the directory's name). A relative one (., ./stashes, or stashes: an
// entry without a colon) is taken from the working directory now, when the
// setting is read, so the backend names one directory however long the
// program runs. An entry starting with ~ is refused (no shell expanded it).
// Parameters need the URL form (file:///var/lib/claimstash?create_dir=true).
// A URL must have a scheme this program has a backend for (stash.Schemes);
// it is otherwise checked only when the backend is opened
// (stash.OpenDriver).
func ParseBackends(s string) ([]string, error) {
	var out []string
	for _, p := range splitBackends(s) {
		u, err := backendURL(p)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// splitBackends cuts s at the commas that start a new backend.
func splitBackends(s string) []string {
	var parts []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if len(parts) > 0 && !startsBackend(p) {
			parts[len(parts)-1] += "," + p
			continue
		}
		parts = append(parts, p)
	}
	return parts
}

// startsBackend reports whether p reads as the start of a backend rather
// than the rest of the previous one's URL.
func startsBackend(p string) bool {
	if filepath.IsAbs(p) || strings.HasPrefix(p, ".") {
		return true
	}
	scheme, _, ok := strings.Cut(p, "://")
	return ok && validScheme(scheme)
}

// validScheme is RFC 3986's scheme grammar, ALPHA *( ALPHA / DIGIT / "+" /
// "-" / "." ), of at most stash.MaxSchemeLength characters.
func validScheme(s string) bool {
	if s == "" || len(s) > stash.MaxSchemeLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // lower case, for letters
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (s[i] >= '0' && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.'):
		default:
			return false
		}
	}
	return true
}

// backendURL is the backend URL one entry of a backend setting names.
func backendURL(p string) (string, error) {
	if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("%s starts with ~, which no shell expanded here: write the directory in full, such as /var/lib/claimstash", Quote(p))
	}
	if !filepath.IsAbs(p) && !strings.Contains(p, ":") {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("directory %s: %w", Quote(p), err)
		}
		p = abs
	}
	if filepath.IsAbs(p) {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Clean(p))}).String(), nil
	}
	scheme, _, ok := strings.Cut(p, ":")
	if ok && strings.Contains(p, "://") && !validScheme(scheme) {
		return "", fmt.Errorf("backend URL scheme %s: only letters, digits and the signs + - . may follow its first letter, which must be a letter", Quote(scheme))
	}
	if !ok || !validScheme(scheme) {
		return "", fmt.Errorf("%s is neither a URL nor a directory: write a URL such as file:///var/lib/claimstash, or a directory such as ./stashes",
			Quote(p))
	}
	scheme = strings.ToLower(scheme)
	for _, have := range stash.Schemes() {
		if have == scheme {
			return p, nil
		}
	}
	return "", fmt.Errorf("no backend for scheme %s in this program (have %s://; or a directory)",
		Quote(scheme), strings.Join(stash.Schemes(), "://, "))
}

// ParseNamespace reads a namespace setting (CLAIMSTASH_NAMESPACE,
// --namespace), trimmed of surrounding space: lowercase letters, digits and
// inner hyphens (stash.ValidateNamespace). Empty means the engine's default,
// stash.DefaultNamespace, and is returned as "".
func ParseNamespace(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if err := stash.ValidateNamespace(s); err != nil {
		return "", err
	}
	return s, nil
}

// ParseSize reads a number of bytes, trimmed of surrounding space: a whole
// number (10485760), or a number and a unit, case-insensitive, with or
// without a space: B; kB, MB, GB, TB, PB, EB (powers of 1000, also k, M, G,
// ...); KiB, MiB, GiB, TiB, PiB, EiB (powers of 1024, also Ki, Mi, ...). So
// 10MB is 10,000,000 bytes and 10MiB 10,485,760. A fraction is taken where
// it makes whole bytes (1.5KiB is 1536; 1.5B is refused), so a size is never
// rounded. Commas are refused (1,5MB could be 1.5 MB or 15 MB), and so are
// negative numbers and sizes over math.MaxInt64.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	want := errors.New("want a number of bytes, such as 1048576, 10MB or 10MiB")
	if strings.Contains(s, ",") {
		return 0, errors.New("want a number of bytes without commas, such as 1048576, 10MB or 10MiB")
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if strings.Trim(num, ".") == "" || strings.Count(num, ".") > 1 {
		return 0, want
	}
	n, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, want
	}
	// humanize knows the units: the size of one of them is the multiplier.
	m, err := humanize.ParseBytes("1" + unit)
	if err != nil {
		if strings.Contains(err.Error(), "too large") {
			return 0, errors.New("too large a number of bytes")
		}
		return 0, want
	}
	n.Mul(n, new(big.Rat).SetUint64(m))
	if !n.IsInt() {
		return 0, fmt.Errorf("%s is not a whole number of bytes", Quote(s))
	}
	if !n.Num().IsInt64() {
		return 0, errors.New("too large a number of bytes")
	}
	return n.Num().Int64(), nil
}

// ParseLinkKeys reads share-link keys (CLAIMSTASH_LINK_KEYS, or
// CLAIMSTASH_LINK_KEY when that is unset; --link-keys) as links.ParseKeys
// does: id:base64-secret,...; the first signs, all verify. Two keys with one
// id are refused. Empty means no keys, and is returned as nil.
func ParseLinkKeys(s string) ([]links.Key, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	keys, err := links.ParseKeys(s)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.ID] {
			return nil, fmt.Errorf("links: key id %s twice", Quote(k.ID))
		}
		seen[k.ID] = true
	}
	return keys, nil
}

// ParseShareURL reads where the share-link handler is reachable
// (CLAIMSTASH_SHARE_URL, --share-url), trimmed of surrounding space: an
// http:// or https:// URL with a host and an optional path, no credentials,
// query or fragment. Empty means none, and is returned as "".
func ParseShareURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if _, _, err := links.EngineOptions(nil, s); err != nil {
		return "", err
	}
	return s, nil
}

// ParseOrigins reads the origins whose share links may be fetched
// (CLAIMSTASH_TRUSTED_ORIGINS, --trusted-origins): comma-separated, each
// trimmed of surrounding space, empty entries skipped; each an origin,
// https://host[:port] (http:// too), with no path.
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if _, err := links.NewFetcher(links.TrustOrigins(o)); err != nil {
			// The option's own wrapping names it; what is wrong with the
			// origin is the cause.
			if cause := errors.Unwrap(err); cause != nil {
				err = cause
			}
			return nil, fmt.Errorf("trusted origin %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Quote quotes s for an error message, cut to 40 bytes.
func Quote(s string) string {
	if len(s) > 40 {
		return strconv.QuoteToASCII(s[:40]) + "…"
	}
	return strconv.QuoteToASCII(s)
}
