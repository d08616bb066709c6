package ccsns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/claimstash/claimstash/claimcheck"
)

// SNS's limits.
const (
	// DefaultMaxMessageBytes is SNS's largest message, body plus
	// attributes, and the most a PublishBatch may carry in all.
	DefaultMaxMessageBytes = 262144
	// MaxAttributes is the most message attributes a message may carry
	// to an SQS subscriber (SQS takes 10).
	MaxAttributes = 10
	// maxBatchEntries is the most entries of a PublishBatch.
	maxBatchEntries = 10
)

// Sentinel errors; test with errors.Is.
var (
	// ErrTooLarge: a message, or a batch, would be over the size limit
	// even after offloading what can be offloaded.
	ErrTooLarge = errors.New("ccsns: message over the size limit")
	// ErrTooManyAttributes: the contract's attributes would take the
	// message over 10 attributes.
	ErrTooManyAttributes = errors.New("ccsns: too many message attributes")
)

// Client is an *sns.Client whose Publish and PublishBatch are
// claim-checked; everything else is the embedded client's. The change to
// an existing pipeline is one line:
//
//	client := ccsns.New(sns.NewFromConfig(cfg), checker) // was: sns.NewFromConfig(cfg)
//
// With claimcheck.WithContract(ContractAWSPointer), what it publishes is
// what AWS's SNS extended clients publish: SQS queues subscribed with
// RawMessageDelivery get the pointer and its ExtendedPayloadSize attribute,
// and ccsqs (or AWS's SQS extended clients) read them. Every subscriber
// reads the same S3 object, so nothing deletes it on receive; a bucket
// lifecycle rule reclaims it.
//
// A message published with MessageStructure "json" (a message per
// protocol) is never offloaded.
type Client struct {
	*sns.Client
	cc       *claimcheck.Checker
	maxBytes int
}

// An Option configures New.
type Option interface{ apply(*Client) }

type optionFunc func(*Client)

func (f optionFunc) apply(c *Client) { f(c) }

// WithMaxMessageBytes sets the size limit of a message and of a batch
// (DefaultMaxMessageBytes).
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c *Client) {
		if n > 0 {
			c.maxBytes = n
		}
	})
}

// New wraps client. The checker's DeleteAfterAck does not apply to SNS
// (a warning is logged if it is set): a publisher never acknowledges.
func New(client *sns.Client, cc *claimcheck.Checker, opts ...Option) *Client {
	c := &Client{Client: client, cc: cc, maxBytes: DefaultMaxMessageBytes}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(c)
	}
	if cc.DeletesAfterAck() {
		slog.Default().Warn("ccsns: the checker's DeleteAfterAck does not apply to SNS; stashes live until their TTL or lifecycle rule")
	}
	return c
}

// Unwrap returns the wrapped client.
func (c *Client) Unwrap() *sns.Client { return c.Client }

// Publish offloads the message first if the checker says so, and
// publishes. The stash is written before the message is published; a
// failure to write it, a message still over the limit (ErrTooLarge) or one
// the contract would take over 10 attributes (ErrTooManyAttributes) is
// returned and nothing is published. A message already marked
// claim-checked whose mark does not match its body (an extended client's
// size attribute on a body that is not an S3 pointer, both contracts at
// once) is refused, matching claimcheck.ErrMalformed. The attributes counted are those the
// message is published with, the trace context a checker's observer (such
// as otelstash's) adds included: an offloaded message that would carry 11
// is ErrTooManyAttributes, after its stash was written (a lifecycle rule
// reclaims it). in itself is not changed.
func (c *Client) Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if in == nil {
		return c.Client.Publish(ctx, in, optFns...)
	}
	topic := topicName(aws.ToString(in.TopicArn) + aws.ToString(in.TargetArn))
	msg, attrs, _, err := c.prepare(ctx, topic, aws.ToString(in.Message), in.MessageAttributes, aws.ToString(in.MessageStructure) == "json", false)
	if err != nil {
		return nil, err
	}
	cp := *in
	cp.Message, cp.MessageAttributes = aws.String(msg), attrs
	return c.Client.Publish(ctx, &cp, optFns...)
}

// PublishBatch offloads each entry the checker says to, then, while the
// batch is over the limit in all, its largest remaining entries. An entry
// that cannot be offloaded fails the whole call before anything is
// published. A batch of more than 10 entries is SNS's to refuse, before
// any stash is written.
func (c *Client) PublishBatch(ctx context.Context, in *sns.PublishBatchInput, optFns ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	if in == nil || len(in.PublishBatchRequestEntries) == 0 || len(in.PublishBatchRequestEntries) > maxBatchEntries {
		// SNS refuses a batch of more than 10 before any stash is written.
		return c.Client.PublishBatch(ctx, in, optFns...)
	}
	topic := topicName(aws.ToString(in.TopicArn))
	type prepared struct {
		msg       string
		attrs     map[string]types.MessageAttributeValue
		offloaded bool
	}
	entries := in.PublishBatchRequestEntries
	ps := make([]prepared, len(entries))
	total := 0
	for i, e := range entries {
		m, a, off, err := c.prepare(ctx, topic, aws.ToString(e.Message), e.MessageAttributes, aws.ToString(e.MessageStructure) == "json", false)
		if err != nil {
			return nil, fmt.Errorf("ccsns: batch entry %s: %w", aws.ToString(e.Id), err)
		}
		ps[i] = prepared{m, a, off}
		total += len(m) + attrSize(a)
	}
	for total > c.maxBytes {
		j, size := -1, 0
		for i, p := range ps {
			if n := len(p.msg) + attrSize(p.attrs); !p.offloaded && aws.ToString(entries[i].MessageStructure) != "json" && n > size {
				j, size = i, n
			}
		}
		if j < 0 {
			return nil, fmt.Errorf("%w: batch of %d bytes, limit %d, nothing left to offload", ErrTooLarge, total, c.maxBytes)
		}
		e := entries[j]
		m, a, off, err := c.prepare(ctx, topic, aws.ToString(e.Message), e.MessageAttributes, false, true)
		if err != nil {
			return nil, fmt.Errorf("ccsns: batch entry %s: %w", aws.ToString(e.Id), err)
		}
		if !off {
			return nil, fmt.Errorf("%w: batch of %d bytes, limit %d; entry %s may not be offloaded", ErrTooLarge, total, c.maxBytes, aws.ToString(e.Id))
		}
		total += len(m) + attrSize(a) - size
		ps[j] = prepared{m, a, true}
	}
	cp := *in
	cp.PublishBatchRequestEntries = slices.Clone(entries)
	for i := range cp.PublishBatchRequestEntries {
		cp.PublishBatchRequestEntries[i].Message, cp.PublishBatchRequestEntries[i].MessageAttributes = aws.String(ps[i].msg), ps[i].attrs
	}
	return c.Client.PublishBatch(ctx, &cp, optFns...)
}

func (c *Client) prepare(ctx context.Context, topic, msg string, attrs map[string]types.MessageAttributeValue, perProtocol, force bool) (string, map[string]types.MessageAttributeValue, bool, error) {
	h := &attributes{src: attrs}
	if perProtocol {
		if n := len(msg) + h.WireSize(); n > c.maxBytes {
			return "", nil, false, fmt.Errorf("%w: %d bytes, limit %d (per-protocol messages are not offloaded)", ErrTooLarge, n, c.maxBytes)
		}
		return msg, attrs, false, nil
	}
	if k := unreadableMark(attrs); k != "" {
		return "", nil, false, &claimcheck.Error{Op: "offload", Topic: topic, Err: fmt.Errorf(
			"%w: attribute %s is neither a String nor a Number", claimcheck.ErrMalformed, k)}
	}
	if err := claimcheck.CheckMark([]byte(msg), h); err != nil {
		return "", nil, false, &claimcheck.Error{Op: "offload", Topic: topic, Err: err}
	}
	if force {
		// For the batch's limit, as ccnats and ccsarama do for their
		// brokers' caps: only where the policy lets it (claimcheck.ForLimit).
		if !c.cc.ForLimit(h) {
			return msg, attrs, false, nil
		}
		h.Set(claimcheck.HeaderOffload, claimcheck.OffloadAlways)
	}
	added := 2
	if c.cc.Contract() == claimcheck.ContractAWSPointer {
		added = 1
	}
	n := len(h.cur())
	if _, ok := h.cur()[claimcheck.HeaderOffload]; ok {
		n-- // the offload removes the override
	}
	if n+added > MaxAttributes {
		if off, err := c.cc.ShouldOffload([]byte(msg), h); err == nil && off {
			return "", nil, false, fmt.Errorf("%w: %d, and the contract adds %d", ErrTooManyAttributes, n, added)
		}
	}
	out, addr, err := c.cc.Offload(ctx, topic, []byte(msg), h)
	if err != nil {
		return "", nil, false, err
	}
	if n := len(out) + h.WireSize(); n > c.maxBytes {
		return "", nil, false, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, c.maxBytes)
	}
	// What the message goes out with: an observer may have added its trace
	// context after the contract's attributes, and SNS's raw delivery to
	// an SQS queue fails for a message with more than 10.
	if n := len(h.cur()); addr != "" && n > MaxAttributes {
		return "", nil, false, fmt.Errorf("%w: %d with the contract's and the observer's", ErrTooManyAttributes, n)
	}
	return string(out), h.cur(), addr != "", nil
}

// unreadableMark returns the name of a contract attribute that m carries
// with a type or value the contract cannot be read from (Binary, or no
// string value), or "": AWS's extended clients take the attribute's
// presence, whatever its type, for the mark.
func unreadableMark(m map[string]types.MessageAttributeValue) string {
	for _, k := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize, claimcheck.HeaderVersion} {
		if v, ok := m[k]; ok {
			if t := aws.ToString(v.DataType); v.StringValue == nil || !(strings.HasPrefix(t, "String") || strings.HasPrefix(t, "Number")) {
				return k
			}
		}
	}
	return ""
}

// topicName is the last segment of an ARN (the stash namer's topic).
func topicName(arn string) string {
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}
