package otelstash

import (
	"regexp"
	"strings"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/claimstash/claimstash/stash"
)

// shownAddress is an address as spans show it: a share link without its
// query (its signature), as errors show one (stash.DisplayAddress), and an
// inline address without its data, which is the payload itself.
func shownAddress(s string) string {
	return withoutInlineData(stash.DisplayAddress(s))
}

// inlineData matches the query of an inline address in a text, quoted
// (as stash.DisplayAddress quotes an address that is not plain) or not.
var inlineData = regexp.MustCompile(`(inline://[^?\s"]*)\?[^\s"]*`)

// withoutInlineData replaces the query of every inline address in s
// (data=, the payload) with "?…".
func withoutInlineData(s string) string {
	if !strings.Contains(s, "inline://") {
		return s
	}
	return inlineData.ReplaceAllString(s, "$1?…")
}

// recordError records err on span, as its status and an exception event,
// with any inline payload its message quotes left out.
func recordError(span trace.Span, err error) {
	msg := err.Error()
	if m := withoutInlineData(msg); m != msg {
		err, msg = &redactedError{msg: m, err: err}, m
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, msg)
}

// redactedError is an error whose message has had an inline payload cut
// out of it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
