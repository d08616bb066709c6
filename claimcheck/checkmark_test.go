package claimcheck_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
)

// TestCheckMark: a message forwarded already marked goes out only if some
// consumer can read its mark.
func TestCheckMark(t *testing.T) {
	addr := []byte("mem://default/x." + strings.Repeat("0", 64))
	ptr := claimcheck.MarshalAWSPointer(claimcheck.AWSPointer{Bucket: "bucket-a", Key: "p/k"})
	for _, tc := range []struct {
		name      string
		body      []byte
		h         claimcheck.MapHeaders
		malformed bool
	}{
		{"unmarked", []byte("plain"), claimcheck.MapHeaders{"a": "b"}, false},
		{"reference", addr, claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: "10"}, false},
		{"a newer consumer's version", addr, claimcheck.MapHeaders{claimcheck.HeaderVersion: "2", claimcheck.HeaderSize: "10"}, false},
		{"reference with a lying size spelling", addr, claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: "+10"}, true},
		{"reference whose body is no address", []byte("not an address"), claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: "10"}, true},
		{"pointer", ptr, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "10"}, false},
		{"pointer whose body is no pointer", []byte("{}"), claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "10"}, true},
		{"both marks", ptr, claimcheck.MapHeaders{claimcheck.AttrExtendedPayloadSize: "10", claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: "10"}, true},
	} {
		err := claimcheck.CheckMark(tc.body, tc.h)
		if got := errors.Is(err, claimcheck.ErrMalformed); got != tc.malformed || !tc.malformed && err != nil {
			t.Errorf("%s: CheckMark = %v; want malformed %v", tc.name, err, tc.malformed)
		}
	}
}
