package main

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/spf13/cobra"
)

// keyJSON is keygen's --json output.
type keyJSON struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Secret string `json:"secret"`
	Key    string `json:"key"`
}

// keyParams are what keygen's flags say about the key to make.
type keyParams struct {
	id string
}

// keyKinds are the kinds of key keygen makes, each one function. A new
// kind (the object-store service's Ed25519 signing keys, written as files)
// is one more entry, with its flags added to keyParams.
var keyKinds = map[string]func(p keyParams) (keyJSON, error){
	"link": linkKey,
}

// linkKey is a share-link HMAC key: 32 random bytes, in the id:base64secret
// form --link-keys and CLAIMSTASH_LINK_KEYS read.
func linkKey(p keyParams) (keyJSON, error) {
	id := p.id
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return keyJSON{}, err
	}
	s := base64.StdEncoding.EncodeToString(secret)
	k := keyJSON{Kind: "link", ID: id, Secret: s, Key: id + ":" + s}
	if err := checkLinkKeys(k.Key); err != nil {
		return keyJSON{}, usagef("--key-id %q: %v", id, err)
	}
	return k, nil
}

func (a *app) keygenCmd() *cobra.Command {
	var kind, id string
	cmd := &cobra.Command{
		Use:     "keygen",
		GroupID: "links",
		Short:   "Generate a share-link key",
		Long: `Generate a key and print it in the form its setting reads.

  --kind link   an HMAC key for share links, printed as id:base64secret for
                --link-keys or CLAIMSTASH_LINK_KEYS. To rotate, put the new key
                first (it signs) and keep the old one after it (it still
                verifies) until the links it signed have expired.`,
		Example: `  export CLAIMSTASH_LINK_KEYS=$(claimstash keygen --key-id k2),$CLAIMSTASH_LINK_KEYS`,
		Args:    exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			gen, ok := keyKinds[kind]
			if !ok {
				return usagef("--kind %q: want link", kind)
			}
			if id == "" {
				id = "k" + time.Now().UTC().Format("20060102")
			}
			k, err := gen(keyParams{id: id})
			if err != nil {
				return err
			}
			if a.common.json {
				return a.printJSON(k)
			}
			a.printf("%s\n", k.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "link", "kind of key: link")
	cmd.Flags().StringVar(&id, "key-id", "", "key `id`, 1 to 32 of [A-Za-z0-9_-] (default: k and today's date)")
	return cmd
}
