package main

import (
	"errors"
	"math"
	"strconv"

	"github.com/dustin/go-humanize"
)

// bytesValue is a flag holding a number of bytes, written as a plain
// integer or with a unit: 10MB is 10,000,000 bytes, 10MiB is 10,485,760
// ("5 GiB", "64k" and "1.5GB" work too).
type bytesValue struct{ p *int64 }

func newBytesValue(p *int64) *bytesValue { return &bytesValue{p} }

func (v *bytesValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v *bytesValue) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return errors.New("want a number of bytes, such as 1048576, 10MB or 10MiB")
	}
	if n > math.MaxInt64 {
		return errors.New("too large a number of bytes")
	}
	*v.p = int64(n)
	return nil
}

func (*bytesValue) Type() string { return "bytes" }
