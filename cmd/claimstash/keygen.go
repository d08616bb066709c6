package main

import (
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// keyJSON is keygen's --json output. A link key fills id, secret and key; an
// objectstore key id and its files.
type keyJSON struct {
	Kind            string   `json:"kind"`
	ID              string   `json:"id"`
	Secret          string   `json:"secret,omitempty"`
	Key             string   `json:"key,omitempty"`
	PrivateKey      string   `json:"private_key,omitempty"`
	PublicKey       string   `json:"public_key,omitempty"`
	PermissionsFile string   `json:"permissions_file,omitempty"`
	MaxPermissions  []string `json:"max_permissions,omitempty"`
}

// keyParams are what keygen's flags say about the key to make.
type keyParams struct {
	id       string // "" for the kind's default
	dir      string
	maxPerms string
}

// keyKinds are the kinds of key keygen makes, each one function.
var keyKinds = map[string]func(p keyParams) (keyJSON, error){
	"link":        linkKey,
	"objectstore": objectstoreKey,
}

// keyKindNames lists keyKinds for messages and help.
func keyKindNames() string {
	names := make([]string, 0, len(keyKinds))
	for k := range keyKinds {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// linkKey is a share-link HMAC key: 32 random bytes, in the id:base64secret
// form --link-keys and CLAIMSTASH_LINK_KEYS read.
func linkKey(p keyParams) (keyJSON, error) {
	if p.dir != "" || p.maxPerms != "" {
		return keyJSON{}, usagef("--dir and --max-permissions are for --kind objectstore (a link key is printed, not written)")
	}
	id := p.id
	if id == "" {
		id = "k" + time.Now().UTC().Format("20060102")
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return keyJSON{}, err
	}
	s := base64.StdEncoding.EncodeToString(secret)
	k := keyJSON{Kind: "link", ID: id, Secret: s, Key: id + ":" + s}
	if err := checkLinkKeys(k.Key); err != nil {
		return keyJSON{}, usagef("--kid %q: %v", id, err)
	}
	return k, nil
}

func (a *app) keygenCmd() *cobra.Command {
	var kind string
	var p keyParams
	cmd := &cobra.Command{
		Use:     "keygen",
		GroupID: "service",
		Short:   "Generate a share-link key or an object-store signing key",
		Long: `Generate a key.

  --kind link         an HMAC key for share links, printed as id:base64secret
                      for --link-keys or CLAIMSTASH_LINK_KEYS. To rotate, put
                      the new key first (it signs) and keep the old one after it
                      (it still verifies) until the links it signed have expired.

  --kind objectstore  an Ed25519 key pair for the object-store API, written into
                      --dir as KID.key (the private key, PEM PKCS #8, mode 0600:
                      what "claimstash token", the objectstore:// backend's
                      key_file and objectstore's Python client's SecretKey sign
                      with) and KID.pub (the public key, PEM, for serve's
                      --auth-keys directory). --max-permissions also writes
                      KID.permissions, the most a token signed by the key may
                      grant. Existing files are never replaced. Prints the kid
                      and the files. To rotate, add a new key to the directory
                      and remove the old one once its tokens have expired:
                      serve picks both up without a restart.`,
		Example: `  export CLAIMSTASH_LINK_KEYS=$(claimstash keygen --kid k2),$CLAIMSTASH_LINK_KEYS
  claimstash keygen --kind objectstore --dir /etc/claimstash/keys --kid relay --max-permissions read`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			gen, ok := keyKinds[kind]
			if !ok {
				return usagef("--kind %q: want one of %s", kind, keyKindNames())
			}
			k, err := gen(p)
			if err != nil {
				return err
			}
			if a.common.json {
				return a.printJSON(k)
			}
			if k.Kind == "link" {
				a.printf("%s\n", k.Key)
				return nil
			}
			a.printf("kid:         %s\nprivate key: %s\npublic key:  %s\n", k.ID, k.PrivateKey, k.PublicKey)
			if k.PermissionsFile != "" {
				a.printf("permissions: %s (%s)\n", k.PermissionsFile, strings.Join(k.MaxPermissions, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "link", "kind of key: "+keyKindNames())
	f.StringVar(&p.id, "kid", "", "key `id` (also --key-id): for link, 1 to 32 of [A-Za-z0-9_-] (default: k and\ntoday's date); for objectstore, 1 to 64 of [A-Za-z0-9_.-] (default: random)")
	f.StringVar(&p.dir, "dir", "", "`directory` objectstore keys are written into (default: the current one)")
	f.StringVar(&p.maxPerms, "max-permissions", "", "most an objectstore key's tokens may grant: `list` of read, write, delete")
	_ = f.SetAnnotation("kid", envAliasAnnotation, []string{"CLAIMSTASH_KEY_ID"})
	return cmd
}

// absDir is dir ("" for the current directory) made absolute, so the paths
// keygen prints work from anywhere.
func absDir(dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", usagef("--dir %q: %v", dir, err)
	}
	return abs, nil
}
