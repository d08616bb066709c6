// Package ccsqs claim-checks Amazon SQS messages, over aws-sdk-go-v2, so
// that a Go service drops into an SQS pipeline beside AWS's extended
// clients (amazon-sqs-java-extended-client-lib, amazon-sqs-extended-client
// for Python), in both directions.
//
// New wraps an *sqs.Client; the change to an existing pipeline is one line:
//
//	client := ccsqs.New(sqs.NewFromConfig(cfg), checker) // was: client := sqs.NewFromConfig(cfg)
//
// SendMessage and SendMessageBatch offload a body over the checker's
// threshold to a stash before sending; ReceiveMessage returns messages
// rehydrated; DeleteMessage, ChangeMessageVisibility and their batches
// also accept the receipt handles AWS's extended clients hand their
// applications (the S3 pointer prepended to SQS's handle); everything else
// is the SQS client's own.
//
// # Contracts
//
// With a checker built with claimcheck.WithContract(ContractAWSPointer) over
// an engine whose stashes go to S3 (package s3stash), messages are AWS's:
// the pointer body and the ExtendedPayloadSize attribute, the payload a
// plain object under s3BucketName/s3Key, the threshold the extended
// clients' 262,144 bytes (claimcheck.DefaultThreshold; the checker's margin
// makes it offload a little earlier, WithMargin(0) makes it exact) and
// claimcheck.Always their always-through-S3 mode. With claimstash's own
// contract (the default), messages carry a stash address and the
// claimstash-version and claimstash-size attributes, and any backend works;
// an extended client's pointer that arrives there is a failure
// (claimcheck.ErrNotAllowed), never a payload.
//
// # Limits
//
// SQS counts a message's body plus its attributes' names, types and values
// (1 MiB, DefaultMaxMessageBytes; WithMaxMessageBytes for queues whose
// MaximumMessageSize is lower), the sum of all of a batch's entries against
// the same limit, and at most 10 attributes. Send checks all three before
// anything is sent: a batch over the limit has its largest entries
// offloaded until it fits (where the policy lets it: not in mode Never,
// not one with claimstash-offload: never, claimcheck.Checker.ForLimit), a
// message the contract's attributes would take
// over 10 is ErrTooManyAttributes before any stash is written, and one still
// too large is ErrTooLarge.
//
// # Receiving, and never deleting
//
// A message whose stash cannot be read is never returned. The checker
// decides (claimcheck.Checker.Decide) and the client translates: Redeliver
// makes the message visible again after the checker's RetryDelay, and the
// queue's redrive policy ends with the dead-letter queue; Handled (its
// OnRehydrateFailure handler took the message) and Discard
// (claimcheck.DiscardAfter, counted in SQS receives) delete it from the
// queue. The error is logged (WithLogger).
//
// A queue subscribed to an SNS topic without raw message delivery receives
// SNS's JSON notification, whose Message is the reference and whose
// MessageAttributes hold the contract, on an SQS message with no attributes
// of its own. Such a notification is not rehydrated (neither do AWS's
// extended clients) and never returned as if it were a plain message: it is
// a failure matching claimcheck.ErrMalformed, settled as above. Subscribe
// such queues with RawMessageDelivery. So is a message that carries both
// contracts, or a contract attribute that is Binary (the extended clients
// take its presence for the mark): never is a pointer returned as the body.
// Send refuses such messages (claimcheck.ErrMalformed) and sends a message
// that is already claim-checked (a relay's) as it is.
//
// Nothing here deletes an S3 object, not even DeleteMessage with an
// extended client's receipt handle (the Python client deletes it only with
// delete_payload_from_s3, the Java client unless cleanupS3Payload is off): deleting the payload before the
// message is deleted loses it when the delete fails or the message comes
// back (the Java client's issues #30 and #137), and with SNS fan-out the
// other queues still need it (#40). A bucket lifecycle rule reclaims the
// objects (see package s3stash). The checker's DeleteAfterAck is not
// applied, with a warning.
package ccsqs
