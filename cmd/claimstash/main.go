// Command claimstash inspects and manages stashes by hand: it is how an
// operator looks at the payload of a claim-checked message.
//
//	claimstash put   [flags] [FILE|-]        store a file (or stdin); prints the address
//	claimstash get   [flags] ADDRESS|LINK    write a stash to stdout (or -o FILE), verified
//	claimstash stat  [flags] ADDRESS         show a stash's attributes
//	claimstash rm    [flags] ADDRESS...      delete stashes
//	claimstash share [flags] ADDRESS         print a short-lived link to a stash
//	claimstash serve [flags]                 serve share links (and /healthz)
//	claimstash sweep [flags]                 delete expired stashes
//
// Flags come before arguments. Every command takes the common flags, each
// with an environment variable as its default:
//
//	-backend URL      CLAIMSTASH_BACKEND           backend URL, repeatable (comma-separated in the
//	                                               variable): file:///var/lib/claimstash, s3://..., nats://..., mem://
//	-namespace NS     CLAIMSTASH_NAMESPACE         default namespace (stash.DefaultNamespace)
//	-link-keys KEYS   CLAIMSTASH_LINK_KEYS         share-link keys "id:base64secret,..."; the first signs
//	                                               (CLAIMSTASH_LINK_KEY is read too)
//	-share-url URL    CLAIMSTASH_SHARE_URL         where "serve" is reachable, for share links
//	-trust ORIGINS    CLAIMSTASH_TRUSTED_ORIGINS   origins (https://host[:port]) whose links get may fetch
//	-max-size N       CLAIMSTASH_MAX_SIZE          largest payload, in bytes
//	-json                                          machine-readable output on stdout
//	-quiet                                         no progress on stderr
//
// Transfers over 4 MiB show progress on stderr when it is a terminal. get
// streams: memory stays bounded whatever the size, and with -o the file
// appears (by rename) only once every byte has been verified. Exit status:
// 0 success, 1 failure, 2 usage, 3 not found or expired, 4 integrity
// failure (the bytes do not match the address).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
