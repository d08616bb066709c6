// Command claimstash is how an operator looks at the payload of a
// claim-checked message by hand: store a file, read a stash back (verified),
// show its attributes, delete it, share it through a short-lived link, sweep
// expired stashes, list a namespace, and inspect a raw claim-checked message.
// It also serves Sentry objectstore's v1 API over its backends, beside its
// share links, and makes the keys and tokens for it.
//
//	claimstash put     [FILE|-]          store a file (or stdin); prints the address
//	claimstash get     ADDRESS|LINK      write a verified stash to -o FILE (or stdout)
//	claimstash stat    ADDRESS           show a stash's attributes
//	claimstash rm      ADDRESS...        delete stashes
//	claimstash ls                        list a namespace's stashes
//	claimstash inspect [MESSAGE.json|-]  check a claim-checked message and its stash
//	claimstash share   ADDRESS           print a short-lived link to a stash
//	claimstash sweep                     delete expired stashes
//	claimstash serve                     serve the objectstore API, share links, /health, /ready
//	claimstash keygen                    generate a share-link key, or (--kind objectstore) an API key pair
//	claimstash token                     mint a scoped token for the objectstore API
//	claimstash completion bash|zsh|fish  shell completion
//
// serve's API needs --auth-keys, the public keys that tokens are signed with
// (a directory that keygen --kind objectstore writes into, or a JSON key
// file), unless --no-auth is given for a local demo; on SIGINT or SIGTERM it
// answers /ready with 503 for --drain, then stops accepting and gives
// requests in flight up to --grace. token signs with the private key keygen
// wrote:
//
//	claimstash keygen --kind objectstore --dir keys --kid relay
//	claimstash serve -b /var/lib/claimstash --auth-keys keys --listen :8080
//	claimstash token --key keys/relay.key --usecase attachments --scopes 'org=42;project=*'
//
// The objectstore:// backend (kid= and key_file=) makes claimstash a client
// of such a server.
//
// Flags may come anywhere on the line. Every flag has an environment
// variable, CLAIMSTASH_ and the flag's name in capitals with dashes as
// underscores (--max-size: CLAIMSTASH_MAX_SIZE); a flag on the command line
// wins over its variable. --backend, --namespace, --max-size, --link-keys,
// --share-url and --trusted-origins, and their variables, are read by the
// parsers claimstash.OpenEnv reads the variables with, so a service given
// the same environment builds the same engine: a backend is a URL or a
// directory (a relative one is taken from the working directory).
// "claimstash help exit-codes" lists the exit
// statuses, "claimstash help json" the shape of every command's --json
// output.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	a := newApp(os.Stdin, os.Stdout, os.Stderr)
	go func() {
		if s, ok := <-sigs; ok {
			sig := s.(syscall.Signal)
			cancel(interrupted{sig})
			if a.stopsItself.Load() {
				// serve drains and shuts down in its own time (--drain,
				// --grace); a second signal ends it at once.
				if s, ok := <-sigs; ok {
					os.Exit(128 + int(s.(syscall.Signal)))
				}
				return
			}
			// A command blocked on a read that no context reaches (a
			// terminal's stdin) still ends: writes are atomic, so nothing
			// half-written is left readable.
			time.AfterFunc(3*time.Second, func() { os.Exit(128 + int(sig)) })
		}
	}()
	code := a.run(ctx, os.Args[1:])
	signal.Stop(sigs)
	cancel(errors.New("done"))
	os.Exit(code)
}
