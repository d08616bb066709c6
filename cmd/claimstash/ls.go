package main

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/spf13/cobra"
)

func (a *app) lsCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "ls",
		GroupID: "stash",
		Short:   "List a namespace's stashes with size, age and expiry",
		Long: `List the stashes of a namespace (--namespace, "default" unless set; --all for
every namespace) in the backends that can list their contents, oldest first,
with size, age and expiry; expired stashes are listed as expired until sweep
deletes them. With --json, one stash per line.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.openEngine(cmd.Context(), engineNeeds{backend: true})
			if err != nil {
				return err
			}
			defer e.Close()
			ns := e.Namespace()
			if all {
				ns = ""
			}
			if a.common.json {
				return e.List(cmd.Context(), ns, func(s *stash.Stash) error {
					return jsonLine(a.stdout, toJSON(s))
				})
			}
			var list []*stash.Stash
			if err := e.List(cmd.Context(), ns, func(s *stash.Stash) error {
				list = append(list, s)
				return nil
			}); err != nil {
				return err
			}
			sort.SliceStable(list, func(i, j int) bool { return list[i].Created.Before(list[j].Created) })
			now := time.Now()
			tw := tabwriter.NewWriter(a.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "SIZE\tAGE\tEXPIRES\tADDRESS")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", human(s.Size), age(now, s.Created), expires(now, s.Expiry()), s)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every namespace")
	return cmd
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return short(now.Sub(t))
}

func expires(now, t time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !now.Before(t):
		return "expired"
	}
	return "in " + short(t.Sub(now))
}

// short formats a duration to two units at most: 45s, 3m20s, 5h12m, 3d4h.
func short(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
