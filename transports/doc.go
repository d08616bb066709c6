// Package transports holds one adapter package per messaging client:
// ccwatermill (Watermill publisher/subscriber decorators and router
// middleware), ccsarama (sarama producers, interceptors, consumer-group
// handlers and plain consumer wrappers), ccnats (nats.go core NATS and
// JetStream, and the drop-in WrapConn), ccsqs and ccsns (aws-sdk-go-v2 SQS
// and SNS clients, in claimstash's contract or AWS's extended-client
// pointer). Each follows the wire contract in package claimcheck.
package transports
