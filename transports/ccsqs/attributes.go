package ccsqs

import (
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
)

// SQS types of message attributes.
const (
	typeString = "String"
	typeNumber = "Number"
)

// numberAttrs are the contract attributes sent with SQS type Number, as
// AWS's extended clients send ExtendedPayloadSize.
var numberAttrs = map[string]bool{
	claimcheck.AttrExtendedPayloadSize: true,
	claimcheck.AttrLegacyPayloadSize:   true,
	claimcheck.HeaderSize:              true,
}

// Attributes adapts SQS message attributes to claimcheck.Headers. String
// and Number attributes (custom types such as "String.json" included) read
// as their StringValue; Binary attributes are not headers and are left
// alone. Set writes a String attribute, or a Number for the contract's
// sizes. WireSize counts names, types and values, as SQS and AWS's extended
// clients count a message's size.
//
// Attributes copies the map on its first write, so the caller's input is
// never changed: Map returns the map to send.
type Attributes struct {
	src    map[string]types.MessageAttributeValue
	dst    map[string]types.MessageAttributeValue
	copied bool
}

var _ claimcheck.Headers = (*Attributes)(nil)

// NewAttributes returns a view of m; m itself is never written.
func NewAttributes(m map[string]types.MessageAttributeValue) *Attributes {
	return &Attributes{src: m}
}

// inPlace returns a view that writes m itself (for received messages,
// which are ours to change).
func inPlace(m map[string]types.MessageAttributeValue) *Attributes {
	return &Attributes{dst: m, copied: true}
}

// Map returns the attributes as they are now.
func (a *Attributes) Map() map[string]types.MessageAttributeValue {
	if a.copied {
		return a.dst
	}
	return a.src
}

// Len is the number of attributes.
func (a *Attributes) Len() int { return len(a.Map()) }

func (a *Attributes) own() {
	if !a.copied {
		a.dst = make(map[string]types.MessageAttributeValue, len(a.src)+2)
		maps.Copy(a.dst, a.src)
		a.copied = true
	}
}

// Get returns the string value of a String or Number attribute.
func (a *Attributes) Get(key string) (string, bool) {
	v, ok := a.Map()[key]
	if !ok || v.StringValue == nil || !stringy(aws.ToString(v.DataType)) {
		return "", false
	}
	return *v.StringValue, true
}

func stringy(dataType string) bool {
	return len(dataType) >= 6 && dataType[:6] == typeString || len(dataType) >= 6 && dataType[:6] == typeNumber
}

// Set sets key to a String attribute (a Number for the contract's sizes).
func (a *Attributes) Set(key, value string) {
	a.own()
	t := typeString
	if numberAttrs[key] {
		t = typeNumber
	}
	a.dst[key] = types.MessageAttributeValue{DataType: aws.String(t), StringValue: aws.String(value)}
}

// Del removes key.
func (a *Attributes) Del(key string) {
	if _, ok := a.Map()[key]; !ok {
		return
	}
	a.own()
	delete(a.dst, key)
}

// WireSize counts each attribute's name, type and value.
func (a *Attributes) WireSize() int { return attrSize(a.Map()) }

func attrSize(m map[string]types.MessageAttributeValue) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}
