package ccsqs

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// AWS's extended clients (Java and Python) hand their applications receipt
// handles of S3-pointer messages with the object prepended:
//
//	-..s3BucketName..-BUCKET-..s3BucketName..--..s3Key..-KEY-..s3Key..-HANDLE
//
// so that their DeleteMessage can find the object. SQS refuses such a
// handle; Client accepts it, as the extended clients do, and sends SQS the
// HANDLE part. Client never deletes the object (see the package doc): the
// Python client does not either unless delete_payload_from_s3 is set, the
// Java client does unless cleanupS3Payload is off.
const (
	s3BucketMarker = "-..s3BucketName..-"
	s3KeyMarker    = "-..s3Key..-"
)

// sqsHandle returns the SQS receipt handle inside an extended client's
// handle, and any other handle as it is. SQS's own handles never hold the
// marker, so the handle is what follows its last occurrence whatever the
// object key holds.
func sqsHandle(h *string) *string {
	s := aws.ToString(h)
	if !strings.HasPrefix(s, s3BucketMarker) || !strings.Contains(s, s3KeyMarker) {
		return h
	}
	return aws.String(s[strings.LastIndex(s, s3KeyMarker)+len(s3KeyMarker):])
}

// DeleteMessage is the SQS client's, and accepts an extended client's
// receipt handle too. The S3 object is not deleted.
func (c *Client) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if in != nil {
		cp := *in
		cp.ReceiptHandle = sqsHandle(in.ReceiptHandle)
		in = &cp
	}
	return c.Client.DeleteMessage(ctx, in, optFns...)
}

// DeleteMessageBatch is the SQS client's, and accepts extended clients'
// receipt handles too. The S3 objects are not deleted.
func (c *Client) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if in != nil {
		cp := *in
		cp.Entries = slices.Clone(in.Entries)
		for i := range cp.Entries {
			cp.Entries[i].ReceiptHandle = sqsHandle(cp.Entries[i].ReceiptHandle)
		}
		in = &cp
	}
	return c.Client.DeleteMessageBatch(ctx, in, optFns...)
}

// ChangeMessageVisibility is the SQS client's, and accepts an extended
// client's receipt handle too.
func (c *Client) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if in != nil {
		cp := *in
		cp.ReceiptHandle = sqsHandle(in.ReceiptHandle)
		in = &cp
	}
	return c.Client.ChangeMessageVisibility(ctx, in, optFns...)
}

// ChangeMessageVisibilityBatch is the SQS client's, and accepts extended
// clients' receipt handles too.
func (c *Client) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if in != nil {
		cp := *in
		cp.Entries = slices.Clone(in.Entries)
		for i := range cp.Entries {
			cp.Entries[i].ReceiptHandle = sqsHandle(cp.Entries[i].ReceiptHandle)
		}
		in = &cp
	}
	return c.Client.ChangeMessageVisibilityBatch(ctx, in, optFns...)
}
