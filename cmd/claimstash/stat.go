package main

import "github.com/spf13/cobra"

func (a *app) statCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "stat ADDRESS",
		GroupID: "stash",
		Short:   "Show a stash's attributes",
		Args:    exactArgs(1, "one ADDRESS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.openEngine(cmd.Context(), engineNeeds{})
			if err != nil {
				return err
			}
			defer e.Close()
			s, err := e.Stat(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.common.json {
				return a.printJSON(toJSON(s))
			}
			a.printStash(s)
			return nil
		},
	}
}
