package osauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// File names KeyDir reads and GenerateKey writes: <kid>.pub is the PEM
// public key (SubjectPublicKeyInfo), <kid>.key the PEM private key (PKCS #8,
// the form objectstore's Python client signs with), and the optional
// <kid>.permissions lists the key's maximum permissions, one a line.
const (
	PublicKeySuffix   = ".pub"
	PrivateKeySuffix  = ".key"
	PermissionsSuffix = ".permissions"
)

// DefaultReload is how often KeyDir rescans its directory.
const DefaultReload = 10 * time.Second

// PublicKey is a verification key and the most it may grant.
type PublicKey struct {
	Kid string
	Key ed25519.PublicKey
	// MaxPermissions caps what a token signed with this key grants (the
	// token's permissions are intersected with it). Empty means all.
	MaxPermissions []Permission
}

// KeySource looks up public keys by kid. KeyDir and KeySet implement it.
type KeySource interface {
	PublicKey(kid string) (*PublicKey, bool)
}

// KeySet is a fixed set of keys.
type KeySet map[string]*PublicKey

// PublicKey implements KeySource.
func (s KeySet) PublicKey(kid string) (*PublicKey, bool) { k, ok := s[kid]; return k, ok }

// ValidKid reports whether kid can name a key file: 1 to 64 of
// [A-Za-z0-9_.-], not starting with a dot.
func ValidKid(kid string) error {
	if kid == "" || len(kid) > 64 || kid[0] == '.' {
		return fmt.Errorf("osauth: key id %q: want 1 to 64 of A-Za-z0-9_.- not starting with a dot", kid)
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("osauth: key id %q: want 1 to 64 of A-Za-z0-9_.- not starting with a dot", kid)
		}
	}
	return nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" holding an Ed25519 key, and
// nothing else: text around the block, a second block and a private key
// (which has no business in a file that is meant to be public) are refused.
func ParsePublicKeyPEM(b []byte) (ed25519.PublicKey, error) {
	blk, rest := pem.Decode(b)
	switch {
	case blk == nil:
		return nil, errors.New("osauth: want a PEM PUBLIC KEY block")
	case strings.Contains(blk.Type, "PRIVATE KEY") || bytes.Contains(rest, []byte("PRIVATE KEY-----")):
		return nil, errors.New("osauth: holds a private key: want only a PEM PUBLIC KEY block")
	case blk.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("osauth: PEM %s block: want PUBLIC KEY", clip(blk.Type))
	case len(blk.Headers) > 0:
		return nil, errors.New("osauth: PEM PUBLIC KEY block with headers: want none")
	case !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN ")) || len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("osauth: data beside the PEM PUBLIC KEY block: want it alone")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("osauth: public key: %w", err)
	}
	pk, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("osauth: public key is %T, want Ed25519", k)
	}
	return pk, nil
}

// ParsePrivateKeyPEM parses a PEM "PRIVATE KEY" (PKCS #8) holding an
// Ed25519 key.
func ParsePrivateKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("osauth: want a PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("osauth: private key: %w", err)
	}
	sk, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("osauth: private key is %T, want Ed25519", k)
	}
	return sk, nil
}

// LoadPrivateKey reads a PEM private key file (GenerateKey's <kid>.key).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("osauth: %w", err)
	}
	return ParsePrivateKeyPEM(b)
}

func parsePermissions(lines []string) ([]Permission, error) {
	var out []Permission
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p := Permission(l)
		if !p.valid() {
			return nil, fmt.Errorf("osauth: unknown permission %q (known: object.read, object.write, object.delete)", l)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// KeyDir serves the public keys in a directory: every <kid>.pub file, with
// an optional <kid>.permissions beside it. It rescans the directory at most
// every reload interval and at once (at most once a second) when asked for
// a kid it does not know, so keys are added, rotated and removed without a
// restart. Files it cannot parse are skipped (their kids are refused) and
// reported by Err; when the directory is gone every kid is refused. A kid
// is looked up among the files read, never joined into a path. Symlinked
// files are followed (Kubernetes mounts secrets that way), so whoever may
// write the directory decides what it serves.
type KeyDir struct {
	load   func() (KeySet, error)
	reload time.Duration
	now    func() time.Time

	mu       sync.Mutex
	keys     KeySet
	loaded   time.Time
	lastMiss time.Time
	err      error
}

// OpenKeyDir loads dir. reload is the rescan interval (0: DefaultReload;
// negative: never rescan). It fails if dir cannot be read, holds a key
// file it cannot parse, or holds no key.
func OpenKeyDir(dir string, reload time.Duration) (*KeyDir, error) {
	if reload == 0 {
		reload = DefaultReload
	}
	d := &KeyDir{load: func() (KeySet, error) { return loadDir(dir) }, reload: reload, now: time.Now}
	keys, err := d.load()
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("osauth: no %s files in %s", PublicKeySuffix, dir)
	}
	d.keys, d.loaded = keys, d.now()
	return d, nil
}

// Err is the last rescan's failure, if any: files skipped, or a directory
// that could not be read (gone: no keys; otherwise the previous keys stay
// in use until the next rescan).
func (d *KeyDir) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// PublicKey implements KeySource.
func (d *KeyDir) PublicKey(kid string) (*PublicKey, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	k, ok := d.keys[kid]
	due := d.reload > 0 && now.Sub(d.loaded) >= d.reload
	if !ok && now.Sub(d.lastMiss) >= time.Second {
		d.lastMiss, due = now, true
	}
	if due {
		keys, err := d.load()
		d.err = err
		if keys != nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			// A file that does not parse loses only its own key, and a
			// directory that is gone loses them all: a key removed or
			// replaced is refused from this rescan on, whatever else
			// is wrong in the directory.
			d.keys = keys
			k, ok = d.keys[kid]
		}
		// Any other failure to read the directory keeps the previous
		// keys until the next rescan, which waits as a successful one.
		d.loaded = now
	}
	return k, ok
}

func loadDir(dir string) (KeySet, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("osauth: key directory: %w", err)
	}
	keys := KeySet{}
	var errs []error
	for _, e := range ents {
		kid, ok := strings.CutSuffix(e.Name(), PublicKeySuffix)
		if !ok || e.IsDir() || ValidKid(kid) != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pk, err := ParsePublicKeyPEM(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
			continue
		}
		key := &PublicKey{Kid: kid, Key: pk}
		if pb, err := os.ReadFile(filepath.Join(dir, kid+PermissionsSuffix)); err == nil {
			perms, err := parsePermissions(strings.Split(string(pb), "\n"))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s%s: %w", kid, PermissionsSuffix, err))
				continue
			}
			key.MaxPermissions = perms
			if len(perms) == 0 {
				continue // a key that may grant nothing
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		keys[kid] = key
	}
	return keys, errors.Join(errs...)
}

// KeyConfig is the JSON form of a key file: an object of kids.
//
//	{"keys": {"relay": {"public_key": "-----BEGIN PUBLIC KEY-----\n…",
//	                    "max_permissions": ["object.read"]}}}
type KeyConfig struct {
	Keys map[string]struct {
		PublicKey      string       `json:"public_key"`
		MaxPermissions []Permission `json:"max_permissions,omitempty"`
	} `json:"keys"`
}

// LoadKeyFile reads a KeyConfig JSON file into a KeySet, once. It fails if
// the file holds no keys.
func LoadKeyFile(path string) (KeySet, error) {
	keys, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("osauth: key file %s holds no keys", path)
	}
	return keys, nil
}

// KeyFile serves the keys in a KeyConfig JSON file, reread as KeyDir
// rescans its directory, so keys are added, rotated and removed without a
// restart: a key taken out of the file is refused from the next reread on,
// and when the file is gone every kid is refused. A file that does not
// parse (or names an invalid kid or permission) is reported by Err, and
// the previous keys stay in use until a reread succeeds.
type KeyFile struct{ d *KeyDir }

// OpenKeyFile loads path. reload is the reread interval (0: DefaultReload;
// negative: never reread). It fails if the file cannot be read or parsed,
// or holds no key.
func OpenKeyFile(path string, reload time.Duration) (*KeyFile, error) {
	keys, err := LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	if reload == 0 {
		reload = DefaultReload
	}
	d := &KeyDir{load: func() (KeySet, error) { return readKeyFile(path) }, reload: reload, now: time.Now}
	d.keys, d.loaded = keys, d.now()
	return &KeyFile{d}, nil
}

// PublicKey implements KeySource.
func (f *KeyFile) PublicKey(kid string) (*PublicKey, bool) { return f.d.PublicKey(kid) }

// Err is the last reread's failure, if any.
func (f *KeyFile) Err() error { return f.d.Err() }

// readKeyFile parses a KeyConfig JSON file: nil keys and an error if any
// of it is wrong, an empty KeySet if it holds no keys.
func readKeyFile(path string) (KeySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("osauth: %w", err)
	}
	var c KeyConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("osauth: key file %s: %w", path, err)
	}
	keys := KeySet{}
	for kid, k := range c.Keys {
		if err := ValidKid(kid); err != nil {
			return nil, err
		}
		pk, err := ParsePublicKeyPEM([]byte(k.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("osauth: key %q: %w", kid, err)
		}
		lines := make([]string, len(k.MaxPermissions))
		for i, p := range k.MaxPermissions {
			lines[i] = string(p)
		}
		perms, err := parsePermissions(lines)
		if err != nil {
			return nil, fmt.Errorf("osauth: key %q: %w", kid, err)
		}
		keys[kid] = &PublicKey{Kid: kid, Key: pk, MaxPermissions: perms}
	}
	return keys, nil
}

// LoadKeys opens the public keys at path: a directory (KeyDir) or a
// KeyConfig JSON file (KeyFile), both reread every DefaultReload and, at
// most once a second, when asked for a kid they do not know.
func LoadKeys(path string) (KeySource, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("osauth: keys: %w", err)
	}
	if fi.IsDir() {
		return OpenKeyDir(path, 0)
	}
	return OpenKeyFile(path, 0)
}

// WriteMaxPermissions writes <kid>.permissions into dir: the most a token
// signed by that key may grant, as KeyDir reads it.
func WriteMaxPermissions(dir, kid string, perms []Permission) error {
	if err := ValidKid(kid); err != nil {
		return err
	}
	var b strings.Builder
	for _, p := range perms {
		if !p.valid() {
			return fmt.Errorf("osauth: unknown permission %q", p)
		}
		b.WriteString(string(p) + "\n")
	}
	return writeNew(filepath.Join(dir, kid+PermissionsSuffix), []byte(b.String()), 0o644)
}
