// Package transports holds one adapter package per messaging client:
// ccwatermill (Watermill publisher/subscriber decorators and router
// middleware), ccsarama (sarama producers, interceptors and consumer-group
// handlers) and ccnats (nats.go core NATS and JetStream). Each follows the
// wire contract in package claimcheck.
package transports
