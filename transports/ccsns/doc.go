// Package ccsns claim-checks Amazon SNS publishes, over aws-sdk-go-v2, in
// claimstash's contract or in AWS's (claimcheck.ContractAWSPointer, as
// amazon-sns-java-extended-client-lib and amazon-sns-extended-client write
// it). New wraps an *sns.Client; the change to an existing publisher is one
// line:
//
//	client := ccsns.New(sns.NewFromConfig(cfg), checker) // was: client := sns.NewFromConfig(cfg)
//
// Publish and PublishBatch offload a message over the checker's threshold
// before publishing, within SNS's limits: 262,144 bytes of body and
// attributes (DefaultMaxMessageBytes), the same for a whole batch (whose
// largest entries are offloaded until it fits, where the policy lets it:
// claimcheck.Checker.ForLimit), 10 attributes. A message
// with MessageStructure "json" is never offloaded.
//
// SQS queues subscribed with RawMessageDelivery receive the pointer as it
// was published; read them with package ccsqs (or AWS's extended
// clients). Every subscriber reads the same S3 object, so nothing deletes it
// on receive.
package ccsns
