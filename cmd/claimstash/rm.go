package main

import (
	"errors"

	"github.com/claimstash/claimstash/stash"
	"github.com/spf13/cobra"
)

// rmJSON is rm's --json output.
type rmJSON struct {
	Deleted []string `json:"deleted"`
	Missing []string `json:"missing"`
	Inline  []string `json:"inline"`
}

func (a *app) rmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm ADDRESS...",
		GroupID: "stash",
		Short:   "Delete stashes",
		Long: `Delete stashes. A stash that is already gone is an error (exit 3) unless
--force is given. An inline address stores nothing: rm says so and succeeds.`,
		Args: rangeArgs(1, -1, "at least one ADDRESS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.openEngine(cmd.Context(), engineNeeds{})
			if err != nil {
				return err
			}
			defer e.Close()
			res := rmJSON{Deleted: []string{}, Missing: []string{}, Inline: []string{}}
			var errs []error
			for _, addr := range args {
				if pa, err := stash.ParseAddress(addr); err == nil && pa.IsInline() {
					res.Inline = append(res.Inline, addr)
					if !a.common.json {
						a.printf("nothing to delete: %s is inline (its payload travels in the address; nothing was stored)\n", addr)
					}
					continue
				}
				err := e.Delete(cmd.Context(), addr)
				switch {
				case err == nil:
					res.Deleted = append(res.Deleted, addr)
					if !a.common.json {
						a.printf("deleted %s\n", addr)
					}
				case errors.Is(err, stash.ErrNotFound):
					res.Missing = append(res.Missing, addr)
					if !force {
						errs = append(errs, err)
					} else if !a.common.json {
						a.printf("already gone: %s\n", addr)
					}
				default:
					errs = append(errs, err)
				}
			}
			if a.common.json {
				if err := a.printJSON(res); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "a stash that is already gone is not an error")
	return cmd
}
