package ccsns

import (
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/claimstash/claimstash/claimcheck"
)

// numberAttrs are the contract attributes sent with type Number, as AWS's
// extended clients send ExtendedPayloadSize.
var numberAttrs = map[string]bool{
	claimcheck.AttrExtendedPayloadSize: true,
	claimcheck.AttrLegacyPayloadSize:   true,
	claimcheck.HeaderSize:              true,
}

// attributes adapts SNS message attributes to claimcheck.Headers, copying
// the caller's map on the first write (see ccsqs.Attributes, its SQS twin).
type attributes struct {
	src    map[string]types.MessageAttributeValue
	dst    map[string]types.MessageAttributeValue
	copied bool
}

var _ claimcheck.Headers = (*attributes)(nil)

func (a *attributes) cur() map[string]types.MessageAttributeValue {
	if a.copied {
		return a.dst
	}
	return a.src
}

func (a *attributes) own() {
	if !a.copied {
		a.dst = make(map[string]types.MessageAttributeValue, len(a.src)+2)
		maps.Copy(a.dst, a.src)
		a.copied = true
	}
}

func (a *attributes) Get(key string) (string, bool) {
	v, ok := a.cur()[key]
	t := aws.ToString(v.DataType)
	if !ok || v.StringValue == nil || !(strings.HasPrefix(t, "String") || strings.HasPrefix(t, "Number")) {
		return "", false
	}
	return *v.StringValue, true
}

func (a *attributes) Set(key, value string) {
	a.own()
	t := "String"
	if numberAttrs[key] {
		t = "Number"
	}
	a.dst[key] = types.MessageAttributeValue{DataType: aws.String(t), StringValue: aws.String(value)}
}

func (a *attributes) Del(key string) {
	if _, ok := a.cur()[key]; !ok {
		return
	}
	a.own()
	delete(a.dst, key)
}

func (a *attributes) WireSize() int { return attrSize(a.cur()) }

func attrSize(m map[string]types.MessageAttributeValue) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}
