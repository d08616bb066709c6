// Package claimcheck is the claim-check policy: when a message body is
// offloaded to a stash, how a claim-checked message is marked on the wire,
// and how it is offloaded and rehydrated. Transports build on it.
package claimcheck
