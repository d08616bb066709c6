package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
)

// Exit statuses; "claimstash help exit-codes" and the README list them.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2 // a wrong flag or argument, a malformed address or message
	exitNotFound  = 3 // no such stash, or it has expired
	exitIntegrity = 4 // the bytes do not match the address
	exitNoTarget  = 5 // a write into a bucket, stream or directory that does not exist
	exitRefused   = 6 // a share link whose signature does not verify or whose origin is not trusted
	// 128 + the signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
)

const exitCodesHelp = `Exit statuses:

  0    success (also rm -f of a stash that is already gone, and rm of an
       inline address: it says nothing was stored)
  1    failure: a backend that is down, a file that cannot be read, output
       that could not be written (a full disk), anything else
  2    usage or input error: a wrong flag or argument, a malformed address,
       link or message, a missing setting (a backend, link keys)
  3    not found: no such stash, or it has expired
  4    integrity: the stored bytes do not match the address (or inspect's
       claimstash-size); nothing unverified is kept (get -o leaves no file)
  5    missing destination: put into a bucket, stream or directory that does
       not exist
  6    refused: a share link whose signature does not verify, or whose origin
       is not trusted
  130  interrupted (Ctrl-C); 143 on SIGTERM. serve shuts down gracefully on
       either and exits 0; a second signal ends it at once, 130 or 143.
  141  stdout was closed by its reader (claimstash get ... | head -c1):
       killed by SIGPIPE, the output cut short.
`

func exitCodesTopic() *cobraCommand {
	return topic("exit-codes", "What each exit status means", exitCodesHelp)
}

// interrupted is the cause of a context cancelled by a signal.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "interrupted (" + i.sig.String() + ")" }

// usageError is a wrong flag, argument or input: exit 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// putError marks an error of a write, where a missing bucket is not a
// missing stash.
type putError struct{ error }

func (p putError) Unwrap() error { return p.error }

// exitCode classifies err.
func exitCode(ctx context.Context, err error) (code int, kind string) {
	var ue usageError
	var pe putError
	var sig interrupted
	switch {
	case errors.As(context.Cause(ctx), &sig) && ctx.Err() != nil:
		return 128 + int(sig.sig), "interrupted"
	case errors.As(err, &ue):
		return exitUsage, "usage"
	case errors.Is(err, stash.ErrForbidden):
		return exitRefused, "refused"
	case errors.Is(err, stash.ErrIntegrity):
		return exitIntegrity, "integrity"
	case errors.As(err, &pe) && errors.Is(err, stash.ErrNotFound):
		return exitNoTarget, "missing_destination"
	case errors.Is(err, stash.ErrExpired):
		return exitNotFound, "expired"
	case errors.Is(err, stash.ErrNotFound):
		return exitNotFound, "not_found"
	case errors.Is(err, stash.ErrInvalidAddress), errors.Is(err, claimcheck.ErrMalformed),
		errors.Is(err, claimcheck.ErrUnsupportedVersion):
		return exitUsage, "invalid_input"
	}
	return exitFailure, "failure"
}

// fail reports err once, as text or (with --json) as a JSON object on
// stderr, and returns the exit status.
func (a *app) fail(ctx context.Context, err error) int {
	code, kind := exitCode(ctx, err)
	name := "claimstash"
	if a.cmd != nil && a.cmd.Name() != "claimstash" {
		name += " " + a.cmd.Name()
	}
	msg := shownMessage(operatorMessage(err))
	if code >= 128 {
		msg = "interrupted"
	}
	if a.common.json {
		enc := json.NewEncoder(a.stderr)
		_ = enc.Encode(errorJSON{Error: errorBody{Command: strings.TrimPrefix(name, "claimstash "), Message: msg, Kind: kind, Exit: code}})
		return code
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", name, msg)
	if code == exitUsage && kind == "usage" {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", name)
	}
	return code
}

// errorJSON is what --json prints on stderr when a command fails.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Command string `json:"command"`
	Message string `json:"message"`
	Kind    string `json:"kind"`
	Exit    int    `json:"exit"`
}

// Library wording that names Go identifiers, and what an operator sets
// instead.
var operatorWords = strings.NewReplacer(
	"(WithLinkOrigins)", "(trust it with --trusted-origins)",
	"WithLinkOrigins", "--trusted-origins",
	"WithLinkKeys and WithShareBaseURL", "--link-keys and --share-url",
	"ShareHandler needs WithLinkKeys", "serving links needs --link-keys",
	"WithLinkKeys", "--link-keys",
	"WithShareBaseURL", "--share-url",
	"WithMaxSize", "--max-size",
	"add WithBackend or WithBackendURL", "set --backend",
	"WithBackendURL", "--backend",
	"WithBackend", "--backend",
	" (missing import?)", "",
	"need a link signer (WithLinkSigner)", "need --link-keys and --share-url",
	"(WithLinkSigner)", "(set --link-keys and --share-url)",
	"WithLinkSigner", "--link-keys",
	"(WithLinkFetcher)", "(trust its origin with --trusted-origins)",
	"WithLinkFetcher", "--trusted-origins",
	"NewHMAC: ", "",
	"TrustOrigins: ", "",
	"HMAC signer without a base URL", "share links need --share-url as well as --link-keys",
)

// prefixes are the package names library errors start with; a message
// keeps none of them, since the command's name comes first (on every line:
// rm reports one error a line).
var prefixes = regexp.MustCompile(`(?m)(^|: )(stash|claimcheck|links|filestash|memstash|s3stash|natsstash|objectstash|inlinestash|driver|osauth|service): `)

// operatorMessage is err's message for an operator: no Go identifiers, no
// package prefixes repeated down the chain.
func operatorMessage(err error) string {
	msg := operatorWords.Replace(err.Error())
	if strings.Contains(msg, "no backend for scheme") && !strings.Contains(msg, "--backend") {
		msg += " (set --backend or CLAIMSTASH_BACKEND to a backend of that kind)"
	}
	if !strings.Contains(msg, "--trusted-origins") {
		msg = strings.Replace(msg, " is not trusted", " is not trusted (trust it with --trusted-origins)", 1)
	}
	for {
		m := prefixes.ReplaceAllString(msg, "$1")
		if m == msg {
			break
		}
		msg = m
	}
	return msg
}
