package main

import (
	"strconv"

	"github.com/claimstash/claimstash/internal/settings"
)

// bytesValue is a flag holding a number of bytes, read by the parser
// OpenEnv reads CLAIMSTASH_MAX_SIZE with: a plain integer or a number with a
// unit, 10MB is 10,000,000 bytes, 10MiB is 10,485,760 ("5 GiB", "64k" and
// "1.5GB" work too; settings.ParseSize).
type bytesValue struct{ p *int64 }

func newBytesValue(p *int64) *bytesValue { return &bytesValue{p} }

func (v *bytesValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v *bytesValue) Set(s string) error {
	n, err := settings.ParseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (*bytesValue) Type() string { return "bytes" }
