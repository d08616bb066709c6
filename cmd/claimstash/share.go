package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash"

	"github.com/spf13/cobra"
)

// shareJSON is share's --json output.
type shareJSON struct {
	URL       string    `json:"url"`
	Address   string    `json:"address"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *app) shareCmd() *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:     "share ADDRESS",
		GroupID: "links",
		Short:   "Print a short-lived link to a stash",
		Long: `Print a link through which anyone holding it can download the stash, without
credentials, until it expires. An S3 backend presigns the link itself; the
other backends need --link-keys and --share-url, where "claimstash serve"
answers. "claimstash get" reads the link back, verified, with the same
settings.`,
		Example: `  claimstash share --link-ttl 10m file://default/invoice.pdf.2def...`,
		Args:    exactArgs(1, "one ADDRESS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl == 0 {
				ttl = stash.DefaultShareTTL // as the engine reads it, so --json says when it ends
			}
			if ttl < 0 || ttl > stash.MaxShareTTL {
				return usagef("--link-ttl %s: want more than 0 and at most %s", ttl, stash.MaxShareTTL)
			}
			e, err := a.openEngine(cmd.Context(), engineNeeds{backend: true})
			if err != nil {
				return err
			}
			defer e.Close()
			start := time.Now()
			link, err := e.Share(cmd.Context(), args[0], ttl)
			if err != nil {
				return shareError(err)
			}
			if a.common.json {
				return a.printJSON(shareJSON{URL: link, Address: args[0], ExpiresAt: start.Add(ttl).UTC().Truncate(time.Second)})
			}
			a.printf("%s\n", link)
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "link-ttl", 15*time.Minute, "how long the link works (at most 168h; 0: the default)")
	return cmd
}

// shareError says which settings a share link needs.
func shareError(err error) error {
	if errors.Is(err, stash.ErrUnsupported) && strings.Contains(operatorMessage(err), "--link-keys") {
		return usageError{fmt.Errorf("%w (or CLAIMSTASH_LINK_KEYS and CLAIMSTASH_SHARE_URL; keygen makes a key)", err)}
	}
	if errors.Is(err, stash.ErrUnsupported) {
		return usageError{err}
	}
	return err
}
