package main

import "github.com/spf13/cobra"

func (a *app) sweepCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "sweep",
		GroupID: "stash",
		Short:   "Delete expired stashes",
		Long: `Delete the expired stashes of every backend that can list its contents (file,
mem, s3, nats). Expired stashes already read as expired; sweep reclaims their
space.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.openEngine(cmd.Context(), engineNeeds{backend: true})
			if err != nil {
				return err
			}
			defer e.Close()
			n, err := e.Sweep(cmd.Context())
			if a.common.json {
				if jerr := a.printJSON(map[string]int{"swept": n}); err == nil {
					err = jerr
				}
			} else {
				a.printf("deleted %d expired stashes\n", n)
			}
			return err
		},
	}
}
