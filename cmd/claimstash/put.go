package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

func (a *app) putCmd() *cobra.Command {
	var (
		p    putParams
		name string
		meta []string
	)
	cmd := &cobra.Command{
		Use:     "put [FILE|-]",
		GroupID: "stash",
		Short:   "Store a file (or stdin) and print its address",
		Long: `Store a file, or stdin, and print its address. The address is printed only
once the backend has durably written the stash. Payloads small enough travel
inline, in the address itself, unless --no-inline is given.`,
		Example: `  claimstash put --backend /var/lib/claimstash invoice.pdf
  producer | claimstash put --name orders --ttl 24h -`,
		Args: rangeArgs(0, 1, "at most one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(meta) > 0 {
				p.meta = map[string]string{}
				for _, kv := range meta {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return usagef("--meta %q: want key=value", kv)
					}
					if err := plainText("--meta", kv); err != nil {
						return err
					}
					p.meta[k] = v
				}
			}
			if err := plainText("--content-type", p.contentType); err != nil {
				return err
			}
			if err := plainText("--origin", p.origin); err != nil {
				return err
			}
			if p.ttl < 0 || p.tti < 0 {
				return usagef("--ttl and --tti must not be negative")
			}
			var (
				in    io.Reader = a.stdin
				total int64     = -1
			)
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				fi, err := f.Stat()
				switch {
				case err == nil && fi.IsDir():
					return usagef("%s is a directory: put stores one file (or stdin)", shown(args[0], maxShownValue))
				case err == nil && fi.Mode().IsRegular():
					total = fi.Size()
				}
				in = f
				if total >= 0 {
					in = &sizedFile{r: f, name: args[0], size: total}
				}
				if a.afterOpen != nil {
					a.afterOpen(f)
				}
				if name == "" {
					name = stashName(args[0])
				}
			}
			if name == "" {
				name = "stdin"
			}
			prog := a.newProgress("read", name, total)
			e, err := a.openEngine(cmd.Context(), engineNeeds{wrap: prog.counting()})
			if err != nil {
				return err
			}
			defer e.Close()
			s, err := e.createFrom(cmd.Context(), name, prog.reader(ctxReader{cmd.Context(), in}), p)
			prog.done(err)
			if err != nil {
				return err
			}
			if a.common.json {
				return a.printJSON(toJSON(s))
			}
			a.printf("%s\n", s.String())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "stash `name` (default: the file's base name, or \"stdin\")")
	f.DurationVar(&p.ttl, "ttl", 0, "time-to-live, for example 24h (default: no expiry)")
	f.DurationVar(&p.tti, "tti", 0, "time-to-idle: expire this long after the last read (default: none)")
	f.StringVar(&p.contentType, "content-type", "", "payload media `type`")
	f.StringVar(&p.origin, "origin", "", "who created the stash (a service, a host)")
	f.BoolVar(&p.noInline, "no-inline", false, "store in a backend even if the payload fits in the address")
	f.StringArrayVar(&meta, "meta", nil, "metadata `key=value`, repeatable")
	return cmd
}

// plainText refuses an attribute that a backend would store altered or a
// reader's terminal would act on: bytes that are not UTF-8 (a JSON sidecar
// stores U+FFFD instead), control characters (a newline splits an HTTP
// header or a printed line).
func plainText(flag, s string) error {
	if !utf8.ValidString(s) {
		return usagef("%s %s: not UTF-8 text", flag, shown(s, maxShownValue))
	}
	for _, r := range s {
		if unsafeRune(r) {
			return usagef("%s %s: holds a control character", flag, shown(s, maxShownValue))
		}
	}
	return nil
}

// sizedFile reads a regular file that held size bytes when it was opened,
// and fails at its end if it then held fewer: the file was truncated or
// replaced while it was read, and what was read is a torn copy. The error
// reaches the engine before it commits, so nothing is stored. A file that
// grew (appended to while read) is stored as it was read, whole: the
// address is the digest of exactly the bytes stored.
type sizedFile struct {
	r    io.Reader
	name string
	size int64
	n    int64
}

func (s *sizedFile) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err == io.EOF && s.n < s.size {
		return n, fmt.Errorf("%s shrank while it was read (%d bytes when opened, %d read): it was truncated or rewritten; nothing was stored",
			shown(s.name, maxShownValue), s.size, s.n)
	}
	return n, err
}

// ctxReader stops reading once ctx is done, so an interrupted put ends at
// its next read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
