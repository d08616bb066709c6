package stash

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
)

// Address limits. Addresses arrive in messages and are untrusted: the parser
// is strict, allocation is bounded, and nothing it accepts can name a path
// outside a store.
const (
	// MaxAddressLength bounds every address but inline ones.
	MaxAddressLength = 1024
	// MaxNameLength bounds a stash name (without the digest).
	MaxNameLength = 200
	// MaxNamespaceLength bounds a namespace (a DNS label, an S3 bucket name).
	MaxNamespaceLength = 63
	// MaxScopes bounds how many scope components a namespace may carry.
	MaxScopes = 8
	// maxInlineAddress bounds an inline address before decoding.
	maxInlineAddress = 64 << 10
)

// SchemeInline is the scheme of addresses that carry their payload. Every
// other scheme belongs to a backend package, which exports it as its Scheme
// constant (memstash.Scheme, filestash.Scheme, ...) and registers an opener
// for it (RegisterScheme).
const SchemeInline = "inline"

// MaxSchemeLength bounds a scheme: [a-z][a-z0-9+.-]*, at most this long.
const MaxSchemeLength = 32

// Digest algorithms an address can carry, told apart by length.
const (
	DigestSHA256 = "sha256" // 64 hex characters: what claimstash writes
	DigestMD5    = "md5"    // 32 hex characters: kstash's legacy form, read-only
)

// Scope is one ordered component of a namespace's scope, as Sentry
// objectstore's scopes: "org=42". Keys are [a-z][a-z0-9_]*; values are
// [A-Za-z0-9_-] plus dots, never "." or "..".
type Scope struct {
	Key, Value string
}

func (s Scope) String() string { return s.Key + "=" + s.Value }

// Address is a parsed stash address:
//
//	scheme://namespace[/key=value...]/name.<hex digest>
//	inline://namespace[/key=value...]/name?data=<url-escaped base64>
//
// The grammar is kstash's, with optional scope segments between the
// namespace and the name. The zero Address is not valid.
type Address struct {
	Scheme    string
	Namespace string
	Scopes    []Scope
	Name      string
	// Digest is lowercase hex: SHA-256 (64 characters) or, for addresses
	// written by kstash, MD5 (32). Empty for inline addresses.
	Digest string
	// Data is the payload of an inline address.
	Data []byte
}

// DigestAlgorithm tells which hash Digest is: DigestSHA256, DigestMD5, or ""
// for inline addresses.
func (a Address) DigestAlgorithm() string {
	switch len(a.Digest) {
	case 64:
		return DigestSHA256
	case 32:
		return DigestMD5
	}
	return ""
}

// IsInline reports whether the payload travels in the address itself.
func (a Address) IsInline() bool { return a.Scheme == SchemeInline }

// Key is the part of the address after the namespace, as drivers receive it:
// scope segments then "name.<digest>".
func (a Address) Key() string {
	if len(a.Scopes) == 0 && a.Digest == "" {
		return a.Name
	}
	var b strings.Builder
	b.Grow(a.keyLen())
	a.writeKey(&b)
	return b.String()
}

// keyLen is the length of Key, so that it is built in one allocation.
func (a Address) keyLen() int {
	n := len(a.Name)
	for _, s := range a.Scopes {
		n += len(s.Key) + len(s.Value) + 2
	}
	if a.Digest != "" {
		n += 1 + len(a.Digest)
	}
	return n
}

// isKey reports whether s is a.Key().
func (a Address) isKey(s string) bool {
	if len(s) != a.keyLen() {
		return false
	}
	for _, sc := range a.Scopes {
		n := len(sc.Key) + len(sc.Value) + 2
		if s[:len(sc.Key)] != sc.Key || s[len(sc.Key)] != '=' || s[len(sc.Key)+1:n-1] != sc.Value || s[n-1] != '/' {
			return false
		}
		s = s[n:]
	}
	if a.Digest == "" {
		return s == a.Name
	}
	return len(s) == len(a.Name)+1+len(a.Digest) && s[:len(a.Name)] == a.Name && s[len(a.Name)] == '.' && s[len(a.Name)+1:] == a.Digest
}

func (a Address) writeKey(b *strings.Builder) {
	for _, s := range a.Scopes {
		b.WriteString(s.Key)
		b.WriteByte('=')
		b.WriteString(s.Value)
		b.WriteByte('/')
	}
	b.WriteString(a.Name)
	if a.Digest != "" {
		b.WriteByte('.')
		b.WriteString(a.Digest)
	}
}

// String formats the address; ParseAddress(a.String()) gives a back.
func (a Address) String() string {
	var b strings.Builder
	b.Grow(len(a.Scheme) + 3 + len(a.Namespace) + 1 + a.keyLen())
	b.WriteString(a.Scheme)
	b.WriteString("://")
	b.WriteString(a.Namespace)
	b.WriteByte('/')
	a.writeKey(&b)
	s := b.String()
	if a.IsInline() {
		s += "?data=" + url.QueryEscape(base64.StdEncoding.EncodeToString(a.Data))
	}
	return s
}

// ParseAddress parses and validates a stash address. It consults no
// registry: any scheme in the grammar parses, and whether a store serves it
// is the engine's question (ErrUnsupported). Anything malformed — a scheme
// outside the grammar, an http or https URL (a share link, not an address),
// a bad digest, a name or namespace outside the grammar,
// percent-encoding, "..", an absolute or empty path segment, a NUL, a query on
// a non-inline address, an overlong address — is an error that matches
// ErrInvalidAddress. It never panics.
func ParseAddress(s string) (Address, error) {
	var a Address
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return a, invalid("missing scheme")
	}
	if err := ValidateScheme(scheme); err != nil {
		return a, err
	}
	a.Scheme = scheme
	path, query := rest, ""
	if a.IsInline() {
		if len(s) > maxInlineAddress {
			return a, invalid("inline address longer than %d bytes", maxInlineAddress)
		}
		var hasQuery bool
		path, query, hasQuery = strings.Cut(rest, "?")
		if !hasQuery {
			return a, invalid("inline address without data")
		}
	} else if len(s) > MaxAddressLength {
		return a, invalid("address longer than %d bytes", MaxAddressLength)
	}
	ns, last, ok := strings.Cut(path, "/")
	if !ok {
		return a, invalid("want scheme://namespace/name")
	}
	if err := validNamespace(ns); err != nil {
		return a, err
	}
	a.Namespace = ns
	if n := strings.Count(last, "/"); n > MaxScopes {
		return a, invalid("more than %d scopes", MaxScopes)
	} else if n > 0 {
		a.Scopes = make([]Scope, 0, n)
	}
	for {
		seg, rest, more := strings.Cut(last, "/")
		if !more {
			break
		}
		sc, err := parseScope(seg)
		if err != nil {
			return Address{}, err
		}
		a.Scopes = append(a.Scopes, sc)
		last = rest
	}
	if a.IsInline() {
		if err := validName(last); err != nil {
			return Address{}, err
		}
		a.Name = last
		data, err := parseInlineQuery(query)
		if err != nil {
			return Address{}, err
		}
		a.Data = data
		return a, nil
	}
	// The digest follows the last dot. Where a SHA-256 digest is what
	// follows the dot 65 bytes from the end, that dot is the last one (hex
	// has none) and the digest is checked once.
	dot := len(last) - 65
	if dot < 0 || last[dot] != '.' || !isHex(last[dot+1:]) {
		if dot = strings.LastIndexByte(last, '.'); dot < 0 {
			return Address{}, invalid("name without digest")
		}
		if err := validDigest(last[dot+1:]); err != nil {
			return Address{}, err
		}
	}
	name, digest := last[:dot], last[dot+1:]
	if err := validName(name); err != nil {
		return Address{}, err
	}
	a.Name, a.Digest = name, digest
	return a, nil
}

func parseInlineQuery(q string) ([]byte, error) {
	enc, ok := strings.CutPrefix(q, "data=")
	if !ok || strings.ContainsAny(enc, "&=#") && !onlyPadding(enc) {
		return nil, invalid("inline address wants exactly one query parameter, data")
	}
	raw, err := url.QueryUnescape(enc)
	if err != nil {
		return nil, invalid("inline data: %v", err)
	}
	data, err := base64.StdEncoding.Strict().DecodeString(raw)
	if err != nil {
		return nil, invalid("inline data is not base64: %v", err)
	}
	return data, nil
}

// onlyPadding allows '=' only as unescaped base64 padding at the end.
func onlyPadding(s string) bool {
	t := strings.TrimRight(s, "=")
	return !strings.ContainsAny(t, "&=#") && len(s)-len(t) <= 2
}

func validNamespace(ns string) error {
	if ns == "" {
		return invalid("empty namespace")
	}
	if len(ns) > MaxNamespaceLength {
		return invalid("namespace longer than %d characters", MaxNamespaceLength)
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(ns)-1
		if !ok {
			return invalid("namespace %q: want lowercase letters, digits and inner hyphens", truncate(ns))
		}
	}
	return nil
}

// ValidateScheme reports whether s can be the scheme of an address:
// [a-z][a-z0-9+.-]*, at most MaxSchemeLength characters, and neither http
// nor https (those are share links).
func ValidateScheme(s string) error {
	if s == "" || len(s) > MaxSchemeLength || s[0] < 'a' || s[0] > 'z' {
		return invalid("scheme %q: want [a-z][a-z0-9+.-]*", truncate(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-') {
			return invalid("scheme %q: want [a-z][a-z0-9+.-]*", truncate(s))
		}
	}
	if s == "http" || s == "https" {
		return invalid("%s:// is a share link, not a stash address", s)
	}
	return nil
}

// ValidateNamespace reports whether ns is a valid namespace.
func ValidateNamespace(ns string) error { return validNamespace(ns) }

// ValidateName reports whether name is a valid stash name: 1 to
// MaxNameLength characters of [A-Za-z0-9_.-], not starting with a dot or a
// hyphen.
func ValidateName(name string) error { return validName(name) }

func validName(name string) error {
	if name == "" {
		return invalid("empty name")
	}
	if len(name) > MaxNameLength {
		return invalid("name longer than %d characters", MaxNameLength)
	}
	if name[0] == '.' || name[0] == '-' {
		return invalid("name %q starts with %q", truncate(name), name[:1])
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return invalid("name %q: want [A-Za-z0-9_.-]", truncate(name))
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

func parseScope(seg string) (Scope, error) {
	k, v, ok := strings.Cut(seg, "=")
	if !ok {
		return Scope{}, invalid("path segment %q is neither a scope (key=value) nor the last", truncate(seg))
	}
	sc := Scope{Key: k, Value: v}
	return sc, sc.Validate()
}

// Validate reports whether the scope's key and value are in the grammar.
func (s Scope) Validate() error {
	if s.Key == "" || len(s.Key) > 32 || s.Key[0] < 'a' || s.Key[0] > 'z' {
		return invalid("scope key %q: want [a-z][a-z0-9_]{0,31}", truncate(s.Key))
	}
	for i := 0; i < len(s.Key); i++ {
		c := s.Key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return invalid("scope key %q: want [a-z][a-z0-9_]{0,31}", truncate(s.Key))
		}
	}
	if s.Value == "" || len(s.Value) > 64 || s.Value == "." || s.Value == ".." {
		return invalid("scope value %q: want 1 to 64 of [A-Za-z0-9_.-], not . or ..", truncate(s.Value))
	}
	for i := 0; i < len(s.Value); i++ {
		if !nameByte(s.Value[i]) {
			return invalid("scope value %q: want [A-Za-z0-9_.-]", truncate(s.Value))
		}
	}
	return nil
}

func validDigest(d string) error {
	if len(d) != 64 && len(d) != 32 {
		return invalid("digest of %d characters: want 64 (sha256) or 32 (md5)", len(d))
	}
	if !isHex(d) {
		return invalid("digest is not lowercase hex")
	}
	return nil
}

// isHex reports whether d is lowercase hex.
func isHex(d string) bool {
	for i := 0; i < len(d); i++ {
		if !lowerHex[d[i]] {
			return false
		}
	}
	return true
}

var lowerHex = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// DisplayAddress is how an error message, a log line or telemetry (span
// attributes, observer events) shows an address it was given, which may be
// anything a message carried: as it is when it is printable ASCII without
// spaces and at most MaxAddressLength bytes, otherwise quoted (escaping
// control characters, bytes that are not UTF-8 and everything beyond
// ASCII) and cut to its first 200 bytes, so that an operator's terminal or
// log shows neither escape sequences nor megabytes.
//
// A share link is shown without its query and fragment, as
// scheme://host/path?…: its signature (or a presigned URL's credentials) is
// a bearer secret that has no place in a log. An inline address is shown
// without its data, as inline://namespace/name?…: the data is the payload
// itself. An address shown so is shown the same way again.
func DisplayAddress(s string) string {
	suffix := ""
	// A scheme is case-insensitive (RFC 3986): HTTPS://…?X-Amz-Signature=…
	// is no address, but it carries a link's secret all the same.
	if IsLink(s) || hasPrefixFold(s, "https://") || hasPrefixFold(s, "http://") || hasPrefixFold(s, SchemeInline+"://") {
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s, suffix = s[:i], "?…"
		}
	}
	plain := len(s) <= MaxAddressLength
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] > ' ' && s[i] < 0x7f
	}
	switch {
	case plain:
		return s + suffix
	case len(s) <= displayMax:
		return strconv.QuoteToASCII(s) + suffix
	}
	return strconv.QuoteToASCII(s[:displayMax]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// displayMax is how much of an address that is not plain an error shows.
const displayMax = 200
