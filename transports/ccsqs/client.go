package ccsqs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/claimstash/claimstash/claimcheck"
)

// SQS's limits, as it applies them.
const (
	// DefaultMaxMessageBytes is SQS's largest message: body plus
	// attributes (names, types and values). It also bounds the sum of all
	// the entries of a batch. Queues whose MaximumMessageSize is lower (the
	// 262,144 bytes of older queues) take WithMaxMessageBytes.
	DefaultMaxMessageBytes = 1 << 20
	// MaxAttributes is the most message attributes SQS takes on a message.
	MaxAttributes = 10
	// MaxBatchEntries is the most entries of a SendMessageBatch.
	MaxBatchEntries = 10
)

// Sentinel errors; test with errors.Is.
var (
	// ErrTooLarge: a message, or a batch, would be over the size limit even
	// after offloading what can be offloaded.
	ErrTooLarge = errors.New("ccsqs: message over the queue's size limit")
	// ErrTooManyAttributes: the contract's attributes would take the
	// message over SQS's 10 attributes.
	ErrTooManyAttributes = errors.New("ccsqs: too many message attributes")
)

// Client is an *sqs.Client whose SendMessage, SendMessageBatch and
// ReceiveMessage are claim-checked; DeleteMessage, ChangeMessageVisibility
// and their batches accept an extended client's receipt handle too; every
// other call (queue management) is the embedded client's.
// The change to an existing pipeline is one line:
//
//	client := ccsqs.New(sqs.NewFromConfig(cfg), checker) // was: sqs.NewFromConfig(cfg)
//
// With a checker built with claimcheck.WithContract(ContractAWSPointer) on
// an s3 engine, the messages are AWS's extended clients' own (see package
// claimcheck), and Java and Python extended clients on the same queue read
// what it sends and send what it reads.
type Client struct {
	*sqs.Client
	cc  *claimcheck.Checker
	cfg config
}

// New wraps client. A checker built with claimcheck.DeleteAfterAck gets a
// warning (WithLogger): Client never deletes a stash, because a message
// is deleted by receipt handle, after the application is done with it,
// and with SNS fan-out other queues still need it. S3 lifecycle rules
// reclaim the objects.
func New(client *sqs.Client, cc *claimcheck.Checker, opts ...Option) *Client {
	c := &Client{Client: client, cc: cc, cfg: newConfig()}
	for _, o := range opts {
		if o == nil {
			continue // a nil option is none
		}
		o.apply(&c.cfg)
	}
	if cc.DeletesAfterAck() {
		c.cfg.logger.Warn("ccsqs: the checker's DeleteAfterAck is not applied to SQS; stashes live until their TTL or lifecycle rule")
	}
	return c
}

// Checker returns the claim checker.
func (c *Client) Checker() *claimcheck.Checker { return c.cc }

// Unwrap returns the wrapped client.
func (c *Client) Unwrap() *sqs.Client { return c.Client }

// SendMessage offloads the body first if the checker says so, and sends.
// The stash is written, under ctx, before the message is sent; a failure
// to write it, a message still over the size limit (ErrTooLarge) or one
// the contract would take over 10 attributes (ErrTooManyAttributes) is
// returned and nothing is sent. A message already marked claim-checked (a
// relay forwarding what it received) is sent as it is, but one whose mark
// does not match its body (an extended client's size attribute on a body
// that is not an S3 pointer, both contracts at once) is refused, matching
// claimcheck.ErrMalformed. The attributes counted are those the message is
// sent with, the trace context a checker's observer (such as otelstash's)
// adds included: one that would carry 11 is ErrTooManyAttributes, after its
// stash was written (a lifecycle rule reclaims it). in itself is not
// changed.
func (c *Client) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if in == nil {
		return c.Client.SendMessage(ctx, in, optFns...)
	}
	body, attrs, _, err := c.prepare(ctx, queueName(in.QueueUrl), aws.ToString(in.MessageBody), in.MessageAttributes, false)
	if err != nil {
		return nil, err
	}
	cp := *in
	cp.MessageBody, cp.MessageAttributes = aws.String(body), attrs
	return c.Client.SendMessage(ctx, &cp, optFns...)
}

// SendMessageBatch offloads each entry the checker says to, then, while
// the batch as a whole is over the size limit (SQS counts the sum of every
// entry's body and attributes), offloads its largest remaining entries
// too. An entry that cannot be offloaded fails the whole call, before
// anything is sent; SQS's per-entry failures come back in the output as
// usual. A batch of more than 10 entries is SQS's to refuse
// (TooManyEntriesInBatchRequest), before any stash is written.
func (c *Client) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if in == nil || len(in.Entries) == 0 || len(in.Entries) > MaxBatchEntries {
		// SQS refuses a batch of more than 10 before any stash is written.
		return c.Client.SendMessageBatch(ctx, in, optFns...)
	}
	queue := queueName(in.QueueUrl)
	type prepared struct {
		body      string
		attrs     map[string]types.MessageAttributeValue
		offloaded bool
	}
	ps := make([]prepared, len(in.Entries))
	total := 0
	for i, e := range in.Entries {
		b, a, off, err := c.prepare(ctx, queue, aws.ToString(e.MessageBody), e.MessageAttributes, false)
		if err != nil {
			return nil, fmt.Errorf("ccsqs: batch entry %s: %w", aws.ToString(e.Id), err)
		}
		ps[i] = prepared{b, a, off}
		total += len(b) + attrSize(a)
	}
	for total > c.cfg.maxBytes {
		// Offload the largest entry not offloaded yet.
		j, size := -1, 0
		for i, p := range ps {
			if n := len(p.body) + attrSize(p.attrs); !p.offloaded && n > size {
				j, size = i, n
			}
		}
		if j < 0 {
			return nil, fmt.Errorf("%w: batch of %d bytes, limit %d, nothing left to offload", ErrTooLarge, total, c.cfg.maxBytes)
		}
		e := in.Entries[j]
		b, a, off, err := c.prepare(ctx, queue, aws.ToString(e.MessageBody), e.MessageAttributes, true)
		if err != nil {
			return nil, fmt.Errorf("ccsqs: batch entry %s: %w", aws.ToString(e.Id), err)
		}
		if !off {
			return nil, fmt.Errorf("%w: batch of %d bytes, limit %d; entry %s may not be offloaded", ErrTooLarge, total, c.cfg.maxBytes, aws.ToString(e.Id))
		}
		total += len(b) + attrSize(a) - size
		ps[j] = prepared{b, a, true}
	}
	cp := *in
	cp.Entries = slices.Clone(in.Entries)
	for i := range cp.Entries {
		cp.Entries[i].MessageBody, cp.Entries[i].MessageAttributes = aws.String(ps[i].body), ps[i].attrs
	}
	return c.Client.SendMessageBatch(ctx, &cp, optFns...)
}

// prepare applies the policy to one message (forcing the offload with
// force) and checks SQS's limits on the result.
func (c *Client) prepare(ctx context.Context, queue, body string, attrs map[string]types.MessageAttributeValue, force bool) (string, map[string]types.MessageAttributeValue, bool, error) {
	if k := unreadableMark(attrs); k != "" {
		return "", nil, false, &claimcheck.Error{Op: "offload", Topic: queue, Err: fmt.Errorf(
			"%w: attribute %s is neither a String nor a Number", claimcheck.ErrMalformed, k)}
	}
	h := NewAttributes(attrs)
	if err := claimcheck.CheckMark([]byte(body), h); err != nil {
		return "", nil, false, &claimcheck.Error{Op: "offload", Topic: queue, Err: err}
	}
	if force {
		// For the batch's limit, as ccnats and ccsarama do for their
		// brokers' caps: only where the policy lets it (claimcheck.ForLimit).
		if !c.cc.ForLimit(h) {
			return body, attrs, false, nil
		}
		h.Set(claimcheck.HeaderOffload, claimcheck.OffloadAlways)
	}
	added := 2 // claimstash-version, claimstash-size
	if c.cc.Contract() == claimcheck.ContractAWSPointer {
		added = 1 // ExtendedPayloadSize
	}
	n := h.Len()
	if _, ok := h.Map()[claimcheck.HeaderOffload]; ok {
		n-- // the offload removes the override
	}
	if n+added > MaxAttributes {
		if off, err := c.cc.ShouldOffload([]byte(body), h); err == nil && off {
			return "", nil, false, fmt.Errorf("%w: %d, and the contract adds %d (SQS takes %d)", ErrTooManyAttributes, n, added, MaxAttributes)
		}
	}
	out, addr, err := c.cc.Offload(ctx, queue, []byte(body), h)
	if err != nil {
		return "", nil, false, err
	}
	if n := len(out) + h.WireSize(); n > c.cfg.maxBytes {
		return "", nil, false, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, c.cfg.maxBytes)
	}
	if h.Len() > MaxAttributes {
		return "", nil, false, fmt.Errorf("%w: %d (SQS takes %d)", ErrTooManyAttributes, h.Len(), MaxAttributes)
	}
	return string(out), h.Map(), addr != "", nil
}

// contractNames are the attributes a receive must ask for.
var contractNames = []string{claimcheck.HeaderVersion, claimcheck.HeaderSize,
	claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize}

// ReceiveMessage receives and returns the messages rehydrated: Body is the
// payload, the contract's attributes are gone, MD5OfBody is the payload's.
// The contract's attribute names are added to MessageAttributeNames when
// they are not asked for already (in itself is not changed).
//
// A message whose stash cannot be read is not returned. The checker
// decides (claimcheck.Checker.Decide, with the ApproximateReceiveCount as
// Failure.Deliveries, which ReceiveMessage asks for) and the client
// translates: Redeliver (every transient failure, and by default every
// failure) sets the message's visibility timeout to the checker's
// RetryDelay, so it comes back then, and the queue's redrive policy moves
// it to the dead-letter queue in the end; Handled (the checker's
// OnRehydrateFailure handler took it) and Discard (claimcheck.DiscardAfter)
// delete it from the queue. The error is logged (WithLogger); the
// checker's observer sees the failed reads of stashes (a message refused
// before any read, such as SNS's notification of a reference, or an AWS
// pointer for a checker without that contract, or a message carrying both
// contracts, which is ErrMalformed, is logged only). The S3 object is never
// deleted.
func (c *Client) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if in == nil {
		return c.Client.ReceiveMessage(ctx, in, optFns...)
	}
	cp := *in
	cp.MessageAttributeNames = withContractNames(in.MessageAttributeNames)
	if !slices.Contains(in.MessageSystemAttributeNames, types.MessageSystemAttributeNameAll) &&
		!slices.Contains(in.MessageSystemAttributeNames, types.MessageSystemAttributeNameApproximateReceiveCount) {
		// The checker counts deliveries (claimcheck.DiscardAfter).
		cp.MessageSystemAttributeNames = append(slices.Clone(in.MessageSystemAttributeNames), types.MessageSystemAttributeNameApproximateReceiveCount)
	}
	out, err := c.Client.ReceiveMessage(ctx, &cp, optFns...)
	if err != nil {
		return out, err
	}
	queue := queueName(in.QueueUrl)
	kept := out.Messages[:0]
	for i := range out.Messages {
		m := out.Messages[i]
		if c.rehydrate(ctx, in.QueueUrl, queue, &m) {
			kept = append(kept, m)
		}
	}
	clear(out.Messages[len(kept):])
	out.Messages = kept
	return out, nil
}

func withContractNames(names []string) []string {
	for _, n := range names {
		if n == "All" || n == ".*" {
			return names
		}
	}
	out := slices.Clone(names)
	for _, n := range contractNames {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// rehydrate restores m in place and reports whether it may be handed on;
// a message that may not is settled as the checker decided.
func (c *Client) rehydrate(ctx context.Context, queueURL *string, queue string, m *types.Message) bool {
	h := inPlace(m.MessageAttributes)
	pointer := claimcheck.IsAWSPointer(h)
	notification, badMark := false, unreadableMark(m.MessageAttributes)
	if !claimcheck.IsClaimChecked(h) && !pointer && badMark == "" {
		if notification = notifiesReference(aws.ToString(m.Body)); !notification {
			return true
		}
	}
	data := []byte(aws.ToString(m.Body))
	deliveries, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	orig := *m
	in := claimcheck.Incoming{Topic: queue, Body: &data, Headers: h, Deliveries: deliveries, Message: &orig}
	var d claimcheck.Decision
	var err error
	if badMark != "" {
		// AWS's extended clients take the attribute's presence, whatever
		// its type, for the mark: never hand the body on as the payload.
		err = &claimcheck.Error{Op: "rehydrate", Topic: queue, Err: fmt.Errorf(
			"%w: attribute %s is neither a String nor a Number", claimcheck.ErrMalformed, badMark)}
		d, err = c.cc.Decide(ctx, claimcheck.Failure{Topic: queue, Body: data, Headers: h, Err: err, Deliveries: deliveries, Message: &orig})
	} else if notification {
		// Never hand on SNS's notification of a reference: its Message
		// is the reference, not the payload.
		err = &claimcheck.Error{Op: "rehydrate", Topic: queue, Err: fmt.Errorf(
			"%w: an SNS notification of a claim-checked message (subscribe the queue with raw message delivery)", claimcheck.ErrMalformed)}
		d, err = c.cc.Decide(ctx, claimcheck.Failure{Topic: queue, Body: data, Headers: h, Err: err, Deliveries: deliveries, Message: &orig})
	} else if pointer && claimcheck.IsClaimChecked(h) {
		// Two contracts, two references: which body the producer meant
		// cannot be told, and rehydrating one would hand on the other's
		// attributes as the application's.
		err = &claimcheck.Error{Op: "rehydrate", Topic: queue, Err: fmt.Errorf(
			"%w: the message carries both claimstash's contract and an AWS extended client's S3 pointer", claimcheck.ErrMalformed)}
		d, err = c.cc.Decide(ctx, claimcheck.Failure{Topic: queue, Body: data, Headers: h, Err: err, Deliveries: deliveries, Message: &orig})
	} else if pointer && c.cc.Contract() != claimcheck.ContractAWSPointer {
		// Never hand an extended client's pointer on as if it were the
		// payload.
		err = &claimcheck.Error{Op: "rehydrate", Topic: queue, Err: fmt.Errorf(
			"%w: the message is an AWS extended client's S3 pointer, and this checker does not read that contract", claimcheck.ErrNotAllowed)}
		d, err = c.cc.Decide(ctx, claimcheck.Failure{Topic: queue, Body: data, Headers: h, Err: err, Deliveries: deliveries, Message: &orig})
	} else {
		_, d, err = c.cc.RehydrateInPlace(ctx, in)
	}
	switch d {
	case claimcheck.Deliver:
		sum := md5.Sum(data)
		m.Body, m.MD5OfBody, m.MD5OfMessageAttributes = aws.String(string(data)), aws.String(hex.EncodeToString(sum[:])), nil
		return true
	case claimcheck.Handled, claimcheck.Discard:
		// Done with it: the failure handler took it, or the checker gives
		// up on it.
		if _, derr := c.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: queueURL, ReceiptHandle: m.ReceiptHandle}); derr != nil {
			err = errors.Join(err, fmt.Errorf("ccsqs: delete: %w", derr))
		}
	default: // Redeliver, after the checker's retry delay
		secs := int32(min((c.cc.RetryDelay()+time.Second-1)/time.Second, maxVisibility))
		if _, verr := c.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: queueURL, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: secs,
		}); verr != nil {
			err = errors.Join(err, fmt.Errorf("ccsqs: change visibility: %w", verr))
		}
	}
	if err != nil {
		c.cfg.logger.ErrorContext(ctx, "ccsqs: message not delivered", "queue", queue, "message_id", aws.ToString(m.MessageId),
			"decision", d.String(), "err", err)
	}
	return false
}

// unreadableMark returns the name of a contract attribute that m carries
// with a type or value the contract cannot be read from (Binary, or no
// string value), or "".
func unreadableMark(m map[string]types.MessageAttributeValue) string {
	for _, k := range []string{claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize, claimcheck.HeaderVersion} {
		if v, ok := m[k]; ok && (v.StringValue == nil || !stringy(aws.ToString(v.DataType))) {
			return k
		}
	}
	return ""
}

// notifiesReference reports whether body is SNS's JSON notification (what
// a queue subscribed without raw message delivery receives) of a message
// in either contract: one whose MessageAttributes mark it claim-checked or
// an AWS pointer. Its Message is then a reference, and the SQS message
// carries no attribute that says so. Bodies that are not JSON objects
// naming those attributes cost a byte comparison or a few searches.
func notifiesReference(body string) bool {
	b := strings.TrimLeft(body, " \t\r\n")
	if !strings.HasPrefix(b, "{") || !strings.Contains(b, `"Notification"`) || !strings.Contains(b, `"MessageAttributes"`) {
		return false
	}
	if !strings.Contains(b, claimcheck.HeaderVersion) && !strings.Contains(b, claimcheck.AttrExtendedPayloadSize) &&
		!strings.Contains(b, claimcheck.AttrLegacyPayloadSize) {
		return false
	}
	var n struct {
		Type              string
		TopicArn          string
		MessageAttributes map[string]json.RawMessage
	}
	if json.Unmarshal([]byte(b), &n) != nil || n.Type != "Notification" || n.TopicArn == "" {
		return false
	}
	for _, k := range []string{claimcheck.HeaderVersion, claimcheck.AttrExtendedPayloadSize, claimcheck.AttrLegacyPayloadSize} {
		if _, ok := n.MessageAttributes[k]; ok {
			return true
		}
	}
	return false
}

// maxVisibility is SQS's longest visibility timeout, in seconds.
const maxVisibility = 12 * 60 * 60

// queueName is the last segment of a queue URL (the stash namer's topic).
func queueName(u *string) string {
	s := aws.ToString(u)
	if p, err := url.Parse(s); err == nil && p.Path != "" {
		return path.Base(p.Path)
	}
	return path.Base(s)
}
