package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// defaultVerifyBuffer is how much of a stash get holds back from stdout
// until it is verified.
const defaultVerifyBuffer = 64 << 20

// getJSON is get's --json output (with -o).
type getJSON struct {
	Stash  stashJSON `json:"stash"`
	Output string    `json:"output"`
}

func (a *app) getCmd() *cobra.Command {
	var (
		out       string
		holdLimit int64
	)
	cmd := &cobra.Command{
		Use:     "get ADDRESS|LINK",
		GroupID: "stash",
		Short:   "Write a stash, verified, to a file (or stdout)",
		Long: `Read a stash (or a share link) and check every byte against the digest in its
address.

With -o FILE the payload goes to a temporary file beside FILE, which is
renamed to FILE only once every byte has been verified: a stash that fails
the check leaves no file. This is the form to use. A FILE that is a device
or a named pipe (such as /dev/null) is written in place, held back until
verified as stdout is; a symbolic link is written through.

Without -o the payload goes to stdout. A stash of up to --verify-buffer bytes
is held in memory and written only once verified, so a failed check writes
nothing. A larger one streams, and get says so on stderr: its bytes are
tentative until get exits 0.

A link that share printed with the same settings (an S3 backend's presigned
link, or one under --share-url) is read without --trusted-origins.`,
		Example: `  claimstash get -o invoice.pdf file://default/invoice.pdf.2def...
  claimstash get 'https://stash.example.com/s/file/default/invoice.pdf.2def...?exp=...'`,
		Args: exactArgs(1, "one ADDRESS or LINK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			toStdout := out == "" || out == "-"
			special := false // -o names a device, pipe or socket: no rename into it
			if !toStdout {
				fi, err := os.Stat(out)
				switch {
				case err == nil && fi.IsDir():
					// Refused before a byte is fetched: the rename at the
					// end could only fail.
					return usagef("-o %s is a directory: name the file to write", shown(out, maxShownValue))
				case err == nil && !fi.Mode().IsRegular():
					special = true
				}
			}
			if toStdout && a.common.json {
				return usagef("--json needs -o FILE: without it stdout carries the payload")
			}
			ctx := cmd.Context()
			e, err := a.openEngine(ctx, engineNeeds{link: args[0]})
			if err != nil {
				return err
			}
			defer e.Close()
			r, err := e.Open(ctx, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			s := r.Stash()
			if (toStdout || special) && r.Size() > holdLimit {
				where, hint := "stdout", " (use -o FILE to keep only verified bytes)"
				if special {
					where, hint = out, ""
				}
				a.warn(fmt.Sprintf("claimstash get: the stash is %s, over --verify-buffer (%s): it streams to %s, "+
					"and what arrives there is tentative until claimstash exits 0%s",
					human(r.Size()), human(holdLimit), where, hint))
			}
			prog := a.newProgress("get", s.Name(), r.Size())
			if toStdout {
				err = holdBack(a.stdout, prog.reader(r), r.Size(), holdLimit)
				prog.done(err)
				return err
			}
			if special {
				err = writeSpecial(out, prog.reader(r), r.Size(), holdLimit)
			} else {
				err = writeFile(out, prog.reader(r))
			}
			prog.done(err)
			if err != nil {
				return err
			}
			if a.common.json {
				return a.printJSON(getJSON{Stash: toJSON(s), Output: out})
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "write to `FILE`, atomically, once verified")
	holdLimit = defaultVerifyBuffer
	f.Var(newBytesValue(&holdLimit), "verify-buffer", "without -o: hold up to this many `bytes` back from stdout until verified")
	return cmd
}

// holdBack writes r to w: all at once after verification when it is at
// most limit bytes, streaming when it is larger.
func holdBack(w io.Writer, r io.Reader, size, limit int64) error {
	if size >= 0 && size <= limit {
		buf, err := readHeld(r, size)
		if err != nil {
			return err // nothing was written
		}
		_, err = w.Write(buf)
		return err
	}
	_, err := io.Copy(w, r)
	return err
}

// readHeld reads r, a stash of size bytes, to its end (where the reader
// verifies it) and returns its bytes. The buffer starts at no more than
// heldStart and grows heldGrowth times over as bytes arrive, never to the
// size declared up front before they do: that size comes from the backend
// or a link's fragment, and a stash that claims more than it sends costs
// at most heldGrowth times what it sends. A stash that sends its size is
// copied at most once or twice on the way.
func readHeld(r io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, 0, min(size, heldStart))
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(size, heldGrowth*int64(cap(buf))))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) < size {
		return nil, fmt.Errorf("the stash ended after %d of its %d bytes: %w", len(buf), size, io.ErrUnexpectedEOF)
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // verified at io.EOF
		return nil, err
	}
	return buf, nil
}

// Bounds of readHeld's buffer.
const (
	heldStart  = 8 << 20
	heldGrowth = 8
)

// writeSpecial writes r into a file that is not a regular one (a device
// such as /dev/null, a named pipe, a socket), which a rename would replace
// rather than write to. It is held back until verified as stdout is: a
// stash of up to limit bytes is read and checked before the file is even
// opened.
func writeSpecial(name string, r io.Reader, size, limit int64) error {
	var held []byte
	if size >= 0 && size <= limit {
		var err error
		if held, err = readHeld(r, size); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if held != nil {
		_, err = f.Write(held)
	} else {
		_, err = io.Copy(f, r)
	}
	if err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFile writes r to a temporary file beside name and renames it into
// place only once r has ended cleanly (verified). A name that is a symbolic
// link is written through: the file it points to is replaced, the link
// stays.
func writeFile(name string, r io.Reader) (err error) {
	if target, err := filepath.EvalSymlinks(name); err == nil {
		name = target
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".claimstash-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// warn prints a message on stderr, wrapped to the terminal's width when
// stderr is one.
func (a *app) warn(msg string) {
	if !a.terminal {
		fmt.Fprintln(a.stderr, msg)
		return
	}
	width := a.termWidth() - 1
	line := 0
	for i, w := range strings.Fields(msg) {
		if i > 0 && line+1+len(w) > width {
			fmt.Fprintln(a.stderr)
			line = 0
		} else if i > 0 {
			fmt.Fprint(a.stderr, " ")
			line++
		}
		fmt.Fprint(a.stderr, w)
		line += len(w)
	}
	fmt.Fprintln(a.stderr)
}
