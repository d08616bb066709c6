package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash"
	_ "github.com/claimstash/claimstash/stash/filestash"
	"github.com/claimstash/claimstash/stash/links"
	_ "github.com/claimstash/claimstash/stash/memstash"
	_ "github.com/claimstash/claimstash/stash/natsstash"
	_ "github.com/claimstash/claimstash/stash/s3stash"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitNotFound  = 3
	exitIntegrity = 4
)

// progressFloor: transfers larger than this show progress on a terminal.
const progressFloor = 4 << 20

const usage = `usage: claimstash <command> [flags] [arguments]

commands:
  put   [flags] [FILE|-]       store a file (or stdin); prints the address
  get   [flags] ADDRESS|LINK   write a stash to stdout (or -o FILE), verified
  stat  [flags] ADDRESS        show a stash's attributes
  rm    [flags] ADDRESS...     delete stashes
  share [flags] ADDRESS        print a short-lived link to a stash
  serve [flags]                serve share links and /healthz
  sweep [flags]                delete expired stashes

Run "claimstash <command> -h" for a command's flags.
`

// app is one invocation: its streams and environment.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	terminal       bool // stderr is a terminal: show progress

	// common flags
	backends  listFlag
	namespace string
	linkKeys  string
	shareURL  string
	trust     listFlag
	maxSize   int64
	json      bool
	quiet     bool

	linkSigner *links.HMAC // set by engine when link keys are configured
}

// run runs the command line args (without the program name) and returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, terminal: isTerminal(stderr)}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	// Flags bind to the app's fields: start each run from the defaults.
	a.backends, a.trust, a.namespace, a.linkKeys, a.shareURL = nil, nil, "", "", ""
	a.maxSize, a.json, a.quiet = 0, false, false
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, *flag.FlagSet, []string) error{
		"put": a.put, "get": a.get, "stat": a.stat, "rm": a.rm,
		"share": a.share, "serve": a.serve, "sweep": a.sweep,
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		fmt.Fprint(a.stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(a.stderr, "claimstash: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("claimstash "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	a.commonFlags(fs)
	err := cmd(ctx, fs, args[1:])
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "claimstash %s: %v\n", name, err)
		fs.Usage()
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "claimstash %s: %v\n", name, err)
	switch {
	case errors.Is(err, stash.ErrNotFound): // and ErrExpired
		return exitNotFound
	case errors.Is(err, stash.ErrIntegrity):
		return exitIntegrity
	}
	return exitFailure
}

type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func (a *app) commonFlags(fs *flag.FlagSet) {
	fs.Var(&a.backends, "backend", "backend `URL`, repeatable, tried in order (env CLAIMSTASH_BACKEND)")
	fs.StringVar(&a.namespace, "namespace", "", "default `namespace` (env CLAIMSTASH_NAMESPACE)")
	fs.StringVar(&a.linkKeys, "link-keys", "", "share-link `keys` id:base64secret,...; the first signs (env CLAIMSTASH_LINK_KEYS)")
	fs.StringVar(&a.shareURL, "share-url", "", "`URL` where serve is reachable (env CLAIMSTASH_SHARE_URL)")
	fs.Var(&a.trust, "trust", "`origins` (https://host[:port]) whose share links get may fetch (env CLAIMSTASH_TRUSTED_ORIGINS)")
	fs.Int64Var(&a.maxSize, "max-size", 0, "largest payload in `bytes` (env CLAIMSTASH_MAX_SIZE; default stash.DefaultMaxSize)")
	fs.BoolVar(&a.json, "json", false, "JSON output on stdout")
	fs.BoolVar(&a.quiet, "quiet", false, "no progress on stderr")
}

// parse parses a command's flags and checks its argument count.
func (a *app) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int, argsUsage string) ([]string, error) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags] %s\n", fs.Name(), argsUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	rest := fs.Args()
	if len(rest) < minArgs || maxArgs >= 0 && len(rest) > maxArgs {
		return nil, usagef("want %s", argsUsage)
	}
	return rest, nil
}

// engine builds the engine from flags and environment. needBackend says
// whether the command cannot work without one.
func (a *app) engine(ctx context.Context, needBackend bool) (*stash.Engine, error) {
	env := func(flagVal, name string) string {
		if flagVal != "" {
			return flagVal
		}
		return strings.TrimSpace(a.getenv(name))
	}
	backends := a.backends
	if len(backends) == 0 {
		_ = backends.Set(a.getenv("CLAIMSTASH_BACKEND"))
	}
	if needBackend && len(backends) == 0 {
		return nil, usagef("no backend: set -backend or CLAIMSTASH_BACKEND (for example file:///var/lib/claimstash)")
	}
	opts := []stash.Option{stash.WithLogger(slog.New(slog.NewTextHandler(a.stderr, nil)))}
	for _, b := range backends {
		opts = append(opts, stash.WithBackendURL(ctx, b))
	}
	if ns := env(a.namespace, "CLAIMSTASH_NAMESPACE"); ns != "" {
		opts = append(opts, stash.WithNamespace(ns))
	}
	keys := env(a.linkKeys, "CLAIMSTASH_LINK_KEYS")
	if keys == "" {
		keys = strings.TrimSpace(a.getenv("CLAIMSTASH_LINK_KEY"))
	}
	var k []links.Key
	if keys != "" {
		var err error
		if k, err = links.ParseKeys(keys); err != nil {
			return nil, err
		}
	}
	trust := a.trust
	if len(trust) == 0 {
		_ = trust.Set(a.getenv("CLAIMSTASH_TRUSTED_ORIGINS"))
	}
	signer, lopts, err := links.EngineOptions(k, env(a.shareURL, "CLAIMSTASH_SHARE_URL"), trust...)
	if err != nil {
		return nil, err
	}
	a.linkSigner = signer
	opts = append(opts, lopts...)
	maxSize := a.maxSize
	if maxSize == 0 {
		if s := strings.TrimSpace(a.getenv("CLAIMSTASH_MAX_SIZE")); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("CLAIMSTASH_MAX_SIZE=%q: want a positive number of bytes", s)
			}
			maxSize = n
		}
	}
	if maxSize < 0 {
		return nil, usagef("-max-size must be positive")
	}
	if maxSize > 0 {
		opts = append(opts, stash.WithMaxSize(maxSize))
	}
	return stash.New(opts...)
}

// stashJSON is the JSON form of a stash.
type stashJSON struct {
	Address     string            `json:"address"`
	Scheme      string            `json:"scheme"`
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Digest      string            `json:"digest,omitempty"`
	Size        int64             `json:"size"`
	StoredSize  int64             `json:"stored_size"`
	Encoding    string            `json:"encoding,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Origin      string            `json:"origin,omitempty"`
	Created     time.Time         `json:"created,omitzero"`
	ExpiresAt   time.Time         `json:"expires_at,omitzero"`
	TTI         string            `json:"tti,omitempty"`
	LastAccess  time.Time         `json:"last_access,omitzero"`
	Expiry      time.Time         `json:"expiry,omitzero"`
}

func toJSON(s *stash.Stash) stashJSON {
	j := stashJSON{
		Address: s.String(), Scheme: s.Address.Scheme, Namespace: s.Namespace(), Name: s.Name(),
		Digest: s.Address.Digest, Size: s.Size, StoredSize: s.StoredSize, Encoding: string(s.Encoding),
		ContentType: s.ContentType, Metadata: s.Metadata, Origin: s.Origin, Created: s.Created,
		ExpiresAt: s.ExpiresAt, LastAccess: s.LastAccess, Expiry: s.Expiry(),
	}
	if s.TTI > 0 {
		j.TTI = s.TTI.String()
	}
	return j
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// put stores a file or stdin.
func (a *app) put(ctx context.Context, fs *flag.FlagSet, args []string) error {
	name := fs.String("name", "", "stash `name` (default: the file's base name, or \"stdin\")")
	ttl := fs.Duration("ttl", 0, "time-to-live (0: the engine default, none)")
	tti := fs.Duration("tti", 0, "time-to-idle (0: none)")
	ctype := fs.String("content-type", "", "payload media `type`")
	origin := fs.String("origin", "", "who created the stash")
	noInline := fs.Bool("no-inline", false, "store in a backend even if the payload fits in the address")
	var meta listFlag
	fs.Var(&meta, "meta", "metadata `key=value`, repeatable")
	rest, err := a.parse(fs, args, 0, 1, "[FILE|-]")
	if err != nil {
		return err
	}
	var (
		in    io.Reader = a.stdin
		total int64     = -1
		n               = *name
	)
	if len(rest) == 1 && rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			total = fi.Size()
		}
		in = f
		if n == "" {
			n = stashName(filepath.Base(rest[0]))
		}
	}
	if n == "" {
		n = "stdin"
	}
	var opts []stash.CreateOption
	if *ttl > 0 {
		opts = append(opts, stash.TTL(*ttl))
	}
	if *tti > 0 {
		opts = append(opts, stash.TTI(*tti))
	}
	if *ctype != "" {
		opts = append(opts, stash.ContentType(*ctype))
	}
	if *origin != "" {
		opts = append(opts, stash.Origin(*origin))
	}
	if *noInline {
		opts = append(opts, stash.NoInline())
	}
	if len(meta) > 0 {
		md := map[string]string{}
		for _, kv := range meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usagef("-meta %q: want key=value", kv)
			}
			md[k] = v
		}
		opts = append(opts, stash.Metadata(md))
	}
	e, err := a.engine(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	p := a.progress("put", total)
	s, err := e.CreateFrom(ctx, n, p.reader(in), opts...)
	p.done()
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(toJSON(s))
	}
	_, err = fmt.Fprintln(a.stdout, s.String())
	return err
}

// stashName turns a file name into a valid stash name.
func stashName(base string) string {
	b := []byte(base)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), ".-")
	if len(s) > stash.MaxNameLength {
		s = s[:stash.MaxNameLength]
	}
	if s == "" {
		return "file"
	}
	return s
}

// get streams a stash to stdout or a file.
func (a *app) get(ctx context.Context, fs *flag.FlagSet, args []string) error {
	out := fs.String("o", "", "write to `FILE` (atomically, once verified) instead of stdout")
	rest, err := a.parse(fs, args, 1, 1, "ADDRESS|LINK")
	if err != nil {
		return err
	}
	e, err := a.engine(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	r, err := e.Open(ctx, rest[0])
	if err != nil {
		return err
	}
	defer r.Close()
	if *out == "" || *out == "-" {
		p := a.progress("get", r.Size())
		_, err = io.Copy(a.stdout, p.reader(r))
		p.done()
		return err
	}
	if err := a.writeFile(*out, r); err != nil {
		return err
	}
	if a.json {
		return a.printJSON(toJSON(r.Stash()))
	}
	return nil
}

// writeFile writes r to a temporary file beside name and renames it into
// place only once r has ended cleanly (verified).
func (a *app) writeFile(name string, r *stash.Reader) (err error) {
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
	p := a.progress("get", r.Size())
	_, err = io.Copy(f, p.reader(r))
	p.done()
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

func (a *app) stat(ctx context.Context, fs *flag.FlagSet, args []string) error {
	rest, err := a.parse(fs, args, 1, 1, "ADDRESS")
	if err != nil {
		return err
	}
	e, err := a.engine(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	s, err := e.Stat(ctx, rest[0])
	if err != nil {
		return err
	}
	j := toJSON(s)
	if a.json {
		return a.printJSON(j)
	}
	w := a.stdout
	fmt.Fprintf(w, "address:      %s\n", j.Address)
	fmt.Fprintf(w, "namespace:    %s\n", j.Namespace)
	fmt.Fprintf(w, "name:         %s\n", j.Name)
	if j.Digest != "" {
		fmt.Fprintf(w, "digest:       %s\n", j.Digest)
	}
	fmt.Fprintf(w, "size:         %d (%s)\n", j.Size, human(j.Size))
	fmt.Fprintf(w, "stored size:  %d (%s)\n", j.StoredSize, human(j.StoredSize))
	enc := j.Encoding
	if enc == "" {
		enc = "identity"
	}
	fmt.Fprintf(w, "encoding:     %s\n", enc)
	if j.ContentType != "" {
		fmt.Fprintf(w, "content type: %s\n", j.ContentType)
	}
	if j.Origin != "" {
		fmt.Fprintf(w, "origin:       %s\n", j.Origin)
	}
	if !j.Created.IsZero() {
		fmt.Fprintf(w, "created:      %s\n", j.Created.Format(time.RFC3339))
	}
	if !j.Expiry.IsZero() {
		fmt.Fprintf(w, "expires:      %s\n", j.Expiry.Format(time.RFC3339))
	}
	keys := make([]string, 0, len(j.Metadata))
	for k := range j.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "metadata:     %s=%s\n", k, j.Metadata[k])
	}
	return nil
}

func (a *app) rm(ctx context.Context, fs *flag.FlagSet, args []string) error {
	rest, err := a.parse(fs, args, 1, -1, "ADDRESS...")
	if err != nil {
		return err
	}
	e, err := a.engine(ctx, false)
	if err != nil {
		return err
	}
	defer e.Close()
	var errs []error
	deleted := []string{}
	for _, addr := range rest {
		if err := e.Delete(ctx, addr); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, addr)
		if !a.json {
			fmt.Fprintf(a.stdout, "deleted %s\n", addr)
		}
	}
	if a.json {
		if err := a.printJSON(map[string]any{"deleted": deleted}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *app) share(ctx context.Context, fs *flag.FlagSet, args []string) error {
	ttl := fs.Duration("ttl", stash.DefaultShareTTL, "link lifetime")
	rest, err := a.parse(fs, args, 1, 1, "ADDRESS")
	if err != nil {
		return err
	}
	e, err := a.engine(ctx, true)
	if err != nil {
		return err
	}
	defer e.Close()
	link, err := e.Share(ctx, rest[0], *ttl)
	if errors.Is(err, stash.ErrUnsupported) {
		return fmt.Errorf("%w (set -link-keys and -share-url, or CLAIMSTASH_LINK_KEYS and CLAIMSTASH_SHARE_URL)", err)
	}
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(map[string]any{"url": link, "address": rest[0], "expires_at": time.Now().Add(*ttl).UTC()})
	}
	_, err = fmt.Fprintln(a.stdout, link)
	return err
}

func (a *app) sweep(ctx context.Context, fs *flag.FlagSet, args []string) error {
	if _, err := a.parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	e, err := a.engine(ctx, true)
	if err != nil {
		return err
	}
	defer e.Close()
	n, err := e.Sweep(ctx)
	if a.json {
		if jerr := a.printJSON(map[string]any{"deleted": n}); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		fmt.Fprintf(a.stdout, "deleted %d expired stashes\n", n)
	}
	return err
}

// serve runs the share-link handler until ctx is done, then shuts down
// gracefully: in-flight downloads get up to -grace to finish.
func (a *app) serve(ctx context.Context, fs *flag.FlagSet, args []string) error {
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to listen on (env CLAIMSTASH_LISTEN)")
	cert := fs.String("tls-cert", "", "TLS certificate `file` (with -tls-key: serve https)")
	key := fs.String("tls-key", "", "TLS key `file`")
	grace := fs.Duration("grace", 30*time.Second, "how long shutdown waits for in-flight requests")
	if _, err := a.parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	if (*cert == "") != (*key == "") {
		return usagef("-tls-cert and -tls-key go together")
	}
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
	if v := strings.TrimSpace(a.getenv("CLAIMSTASH_LISTEN")); v != "" && !listenSet {
		*listen = v
	}
	e, err := a.engine(ctx, true)
	if err != nil {
		return err
	}
	defer e.Close()
	if a.linkSigner == nil {
		return fmt.Errorf("%w: serving share links needs keys (set -link-keys or CLAIMSTASH_LINK_KEYS)", stash.ErrUnsupported)
	}
	h := links.NewHandler(e, a.linkSigner, links.WithLogger(slog.New(slog.NewTextHandler(a.stderr, nil))))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/", h)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(a.stderr, nil).WithAttrs([]slog.Attr{slog.String("component", "http")}), slog.LevelWarn),
	}
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	if a.json {
		_ = a.printJSON(map[string]string{"listen": ln.Addr().String(), "url": scheme + "://" + ln.Addr().String() + "/"})
	} else {
		fmt.Fprintf(a.stdout, "serving share links on %s://%s/\n", scheme, ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		if *cert != "" {
			errc <- srv.ServeTLS(ln, *cert, *key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err == nil && !a.json {
		fmt.Fprintln(a.stderr, "claimstash serve: shut down")
	}
	return err
}
