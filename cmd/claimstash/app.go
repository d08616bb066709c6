package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// app is one invocation: its streams, environment and the flags every
// command shares.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	out            *outWriter // stdout, remembering its first failed write
	getenv         func(string) string
	terminal       bool // stderr is a terminal: progress may be drawn
	width          func() int

	common commonFlags
	cmd    *cobra.Command // the command being run, once chosen
	// stopsItself is set by a command that ends on its own, in its own
	// time, once its context is cancelled (serve's graceful shutdown), so
	// that an interrupt does not cut it short.
	stopsItself atomic.Bool
	// afterOpen, if set (by tests), is called once put has opened and
	// measured the file it stores, before it reads it.
	afterOpen func(*os.File)
}

// commonFlags are the flags of every command.
type commonFlags struct {
	backends  listValue
	namespace string
	linkKeys  string
	shareURL  string
	trust     listValue
	maxSize   int64
	json      bool
	quiet     bool
}

// run runs the command line args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := newApp(stdin, stdout, stderr)
	return a.run(ctx, args)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	out := &outWriter{w: stdout}
	a := &app{stdin: stdin, stdout: out, stderr: stderr, out: out, getenv: os.Getenv}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		a.terminal = true
		a.width = func() int {
			w, _, err := term.GetSize(int(f.Fd()))
			if err != nil || w <= 0 {
				return 80
			}
			return w
		}
	}
	return a
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.newRoot()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if werr := a.out.failed(); werr != nil {
		// What was printed (an address put stored, a key keygen made, the
		// help) did not all reach stdout: a full disk, a closed pipe. The
		// command did not do its job, whatever it returned.
		if a.cmd == nil {
			a.cmd = cmd
		}
		if err == nil || errors.Is(err, werr) {
			err = fmt.Errorf("writing the output: %w", werr)
		}
	}
	if err == nil {
		return exitOK
	}
	if a.cmd == nil {
		// The line never reached a command (an unknown command, a bad
		// flag or argument): a usage error.
		a.cmd = cmd
		var ue usageError
		if !errors.As(err, &ue) {
			err = usageError{err}
		}
	}
	return a.fail(ctx, backendHint(err))
}

// newRoot builds the command tree. Every command is in a file of its own
// and registers itself here.
func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "claimstash",
		Short: "Look at, store and share the payloads of claim-checked messages",
		Long: `claimstash stores payloads too large for a message and reads them back, verified:
it is how an operator looks at the payload of a claim-checked message by hand.

Flags may come anywhere on the line. Every flag has an environment variable:
CLAIMSTASH_ and the flag's name in capitals, dashes as underscores
(--max-size is CLAIMSTASH_MAX_SIZE); a flag given on the line wins.

See "claimstash help exit-codes" for exit statuses and "claimstash help json"
for the shape of each command's --json output.`,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("no command given")
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.cmd = cmd
			return bindEnv(cmd, a.getenv)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = false

	pf := root.PersistentFlags()
	c := &a.common
	pf.VarP(&c.backends, "backend", "b", "backend `URL` or directory, repeatable, tried in order:\nfile:///var/lib/claimstash (or just /var/lib/claimstash), s3://?region=eu-west-1, nats://host:4222, mem://,\nobjectstore://host:8888?kid=KID&key_file=KID.key (a claimstash serve or objectstore)")
	pf.StringVarP(&c.namespace, "namespace", "n", "", "namespace to store in and list (default \"default\")")
	pf.StringVar(&c.linkKeys, "link-keys", "", "share-link `keys` as id:base64secret,...; the first signs, all verify (see keygen)")
	pf.StringVar(&c.shareURL, "share-url", "", "`URL` where serve is reachable, for the links share prints")
	pf.Var(&c.trust, "trusted-origins", "`origins` (https://host[:port]) whose share links get may fetch, besides\nthe share URL's and the S3 backend's own (also --trust)")
	pf.Var(newBytesValue(&c.maxSize), "max-size", "largest payload in `bytes`, such as 10MB or 10MiB (0: the default, 5 GiB)")
	pf.BoolVar(&c.json, "json", false, "machine-readable output (see \"claimstash help json\")")
	pf.BoolVarP(&c.quiet, "quiet", "q", false, "no progress bar")
	// Older names of three flags and of their variables.
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "trust":
			name = "trusted-origins"
		case "key-id":
			name = "kid"
		}
		return pflag.NormalizedName(name)
	})
	_ = pf.SetAnnotation("link-keys", envAliasAnnotation, []string{"CLAIMSTASH_LINK_KEY"})

	root.AddGroup(&cobra.Group{ID: "stash", Title: "Stashes:"}, &cobra.Group{ID: "links", Title: "Share links:"}, &cobra.Group{ID: "service", Title: "Object-store service:"}, &cobra.Group{ID: "messages", Title: "Messages:"})
	for _, cmd := range []*cobra.Command{
		a.putCmd(), a.getCmd(), a.statCmd(), a.rmCmd(), a.lsCmd(), a.sweepCmd(),
		a.shareCmd(), a.serveCmd(), a.keygenCmd(), a.tokenCmd(),
		a.inspectCmd(),
	} {
		root.AddCommand(cmd)
	}
	root.AddCommand(exitCodesTopic(), jsonTopic())
	root.SetHelpCommand(helpCmd())
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.InitDefaultCompletionCmd() // after SetOut: it keeps the writer
	documentEnv(root)
	return root
}

// helpCmd is cobra's help command, but a topic that does not exist is a
// usage error (cobra's printed the usage and exited 0).
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command or topic (exit-codes, json) in the application.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			for _, sub := range c.Root().Commands() {
				if sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
					if strings.HasPrefix(sub.Name(), toComplete) {
						names = append(names, sub.Name())
					}
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return usagef("no help topic %s", shown(strings.Join(args, " "), maxShownValue))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}

// version is the module version and VCS revision from the build info.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "claimstash (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = " (modified)"
			}
		}
	}
	out := "claimstash " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " " + rev + dirty
		if when != "" {
			out += " " + when
		}
	}
	return out + " " + bi.GoVersion
}

// listValue is a repeatable flag (--backend, --trusted-origins) whose values
// may also be given comma-separated, as its variable is. It keeps each value
// as given: openEngine reads them with the parser OpenEnv reads the variable
// with (settings.ParseBackends, settings.ParseOrigins), so the flag and
// the variable split, trim and refuse alike.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }
func (l *listValue) Type() string   { return "list" }
func (l *listValue) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// Arguments checks that make a wrong count a usage error.
func exactArgs(n int, want string) cobra.PositionalArgs {
	return rangeArgs(n, n, want)
}

func rangeArgs(min, max int, want string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			if want == "" {
				return usagef("%s takes no arguments", cmd.Name())
			}
			return usagef("want %s", want)
		}
		return nil
	}
}

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// outWriter is stdout, remembering the first write that failed: a command
// whose output was lost must not exit 0, even where what printed it (cobra's
// help, a fmt.Fprintf) dropped the error.
type outWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.err = err
	}
	return n, err
}

// failed is the first error writing to stdout, or nil.
func (o *outWriter) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
