package main

import (
	"time"

	"github.com/spf13/cobra"
)

func (a *app) tokenCmd() *cobra.Command {
	p := tokenParams{lifetime: time.Hour}
	cmd := &cobra.Command{
		Use:     "token",
		GroupID: "service",
		Short:   "Mint a token for the object-store API",
		Long: `Mint a token for the object-store API that serve hosts (and for Sentry's
objectstore): an Ed25519-signed JWT for one usecase and its scopes, granting
some permissions until it expires. It is signed with the private key that
"claimstash keygen --kind objectstore" wrote (--key KID.key; the kid is the
file's name unless --kid says otherwise), so serve accepts it when KID.pub is
in its --auth-keys, and grants no more than the key's KID.permissions allow.

--scopes are in the API's path form, key=value;key2=value2, in order; a value
of * allows any value of that scope. A request may name fewer scopes than its
token, but none the token does not cover. --permissions is a list of read,
write and delete (default all).

Prints only the token on stdout, for a variable or a header.`,
		Example: `  TOKEN=$(claimstash token --key keys/relay.key --usecase attachments --scopes 'org=42;project=*' --permissions read,write --lifetime 10m)
  curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8080/v1/objects/attachments/org=42;project=7/report.pdf'`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := mintToken(p, time.Now())
			if err != nil {
				return err
			}
			if a.common.json {
				return a.printJSON(j)
			}
			a.printf("%s\n", j.Token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.key, "key", "", "private key `file` that signs (KID.key, from keygen --kind objectstore)")
	f.StringVar(&p.kid, "kid", "", "key `id` (default: the key file's name without .key)")
	f.StringVar(&p.usecase, "usecase", "", "`usecase` the token is for (* for any)")
	f.StringVar(&p.scopes, "scopes", "", "`scopes` the token covers, as org=42;project=* (default: none)")
	f.StringVar(&p.perms, "permissions", "all", "what the token grants: `list` of read, write, delete, or all")
	f.DurationVar(&p.lifetime, "lifetime", time.Hour, "how long the token is valid")
	return cmd
}
