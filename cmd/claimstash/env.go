package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envAliasAnnotation lists older names of a flag's variable, read when the
// main one is unset.
const envAliasAnnotation = "claimstash_env_alias"

// envSourceAnnotation is set on a flag that bindEnv set from a variable:
// the variable's name, which an error about the value names (setting).
const envSourceAnnotation = "claimstash_env_source"

// envName is the variable of a flag: CLAIMSTASH_ and the name in capitals,
// dashes as underscores.
func envName(flag string) string {
	return "CLAIMSTASH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnv are the flags without a variable: they ask for help, not behaviour.
func noEnv(f *pflag.Flag) bool { return f.Name == "help" || f.Name == "version" }

// bindEnv sets every flag of cmd (its own and the ones it inherits) that the
// command line left unset from its variable, so every flag has one, by
// construction.
func bindEnv(cmd *cobra.Command, getenv func(string) string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || noEnv(f) {
			return
		}
		names := append([]string{envName(f.Name)}, f.Annotations[envAliasAnnotation]...)
		for _, name := range names {
			v := strings.TrimSpace(getenv(name))
			if v == "" {
				continue
			}
			if err := cmd.Flags().Set(f.Name, v); err != nil {
				errs = append(errs, usagef("%s=%q: %v", name, v, err))
			}
			_ = cmd.Flags().SetAnnotation(f.Name, envSourceAnnotation, []string{name})
			return
		}
	})
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// setting names where the value of cmd's flag came from, for an error
// about it: the variable bindEnv read it from (CLAIMSTASH_LINK_KEY, say),
// or the flag given on the line.
func setting(cmd *cobra.Command, flag string) string {
	if cmd != nil {
		if f := cmd.Flags().Lookup(flag); f != nil {
			if src := f.Annotations[envSourceAnnotation]; len(src) > 0 {
				return src[0]
			}
		}
	}
	return "--" + flag
}

// documentEnv adds each flag's variable to its help line, for every command.
func documentEnv(root *cobra.Command) {
	seen := map[*pflag.Flag]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		doc := func(f *pflag.Flag) {
			if seen[f] || noEnv(f) {
				return
			}
			seen[f] = true
			f.Usage += fmt.Sprintf(" [%s]", envName(f.Name))
		}
		c.PersistentFlags().VisitAll(doc)
		c.Flags().VisitAll(doc)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
