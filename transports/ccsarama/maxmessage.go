package ccsarama

import (
	"fmt"
	"strconv"

	"github.com/IBM/sarama"

	"github.com/claimstash/claimstash/claimcheck"
)

// The producer's Producer.MaxMessageBytes. sarama refuses a message whose
// size as it counts it (ProducerMessage.ByteSize) is over it, so the
// producer wrappers claim-check such a message even under the checker's
// threshold, unless the policy keeps it in the message (overCap).

// sarama's count of a record (ProducerMessage.ByteSize, record headers'
// version): its framing at its largest, and that of each header, besides
// the key, value and header bytes.
var (
	recordFraming = (&sarama.ProducerMessage{}).ByteSize(2)
	headerFraming = (&sarama.ProducerMessage{Headers: make([]sarama.RecordHeader, 1)}).ByteSize(2) - recordFraming
)

// minContract is the least the contract's headers add to a reference as
// sarama counts it: claimstash-version and claimstash-size, the size one
// digit. An AWS pointer (a JSON array naming a bucket and key) and its one
// size header take more.
var minContract = len(claimcheck.HeaderVersion) + len(claimcheck.ContractVersion) + headerFraming +
	len(claimcheck.HeaderSize) + 1 + headerFraming

// overCap reports whether the producers claim-check msg, whose encoded
// value is body and which the checker would send as it is, because it is
// over limit, the producer's Producer.MaxMessageBytes: its size as the
// checker counts a record (sarama's ByteSize and the header of the batch
// that carries it, which the broker counts toward max.message.bytes) is
// over it, the checker offloads by size (mode Auto: in Never mode it goes
// out as it is, and sarama refuses it; in Always mode the checker offloads
// it anyway), the producer set no claimstash-offload override ("never"
// keeps it in the message), and it is not marked already (never
// claim-check twice). The AWS pointer contract is no exception: its
// consumers read a pointer whatever the size.
//
// What it costs a message the checker passes: a value no longer than the
// shortest reference could be is never claim-checked for the cap (the
// reference would be no smaller); for a longer one, where the cap is at
// least the checker's threshold nothing more is done: every message the
// checker passes fits (the checker counts the record as sarama does, with
// the batch's header and its margin on top). Only under a cap below the
// threshold is the value's length compared to it, and sarama's size
// counted for a value under it.
func overCap(c *claimcheck.Checker, limit int, msg *sarama.ProducerMessage, body []byte) bool {
	if limit <= 0 || c.Mode() != claimcheck.Auto || len(body) <= c.MinReference()+minContract || limit >= c.Threshold() {
		return false
	}
	// The value alone is a lower bound of the size; the key and headers
	// are counted only when it is under the cap.
	if recordFraming+len(body)+recordBatchOverhead <= limit && msg.ByteSize(2)+recordBatchOverhead <= limit {
		return false
	}
	return c.ForLimit(ProducerHeaders(msg))
}

// checkReference returns an error, before anything is stored, when the
// reference to msg (its key, its address, the contract's headers and the
// producer's headers, which the reference keeps) cannot fit limit, the
// producer's Producer.MaxMessageBytes, however short its address: the
// stash would be written for a message sarama refuses. The error matches
// sarama.ErrMessageSizeTooLarge. It returns nil when the checker would not
// offload msg, or when the reference may fit; one that fits only with an
// address shorter than the stash gets is refused by sarama after the
// write, and the stash is left to its TTL. h is msg's headers as the
// checker sizes them (recordHeaders).
func checkReference(c *claimcheck.Checker, limit int, msg *sarama.ProducerMessage, body []byte, h claimcheck.Headers) error {
	if limit <= 0 {
		return nil
	}
	least := referenceFloor(c, msg, len(body))
	if least <= limit {
		return nil
	}
	if !c.Stores(body, h) {
		return nil // sent as it is, or Offload's error
	}
	return &claimcheck.Error{Op: claimcheck.OpOffload, Topic: msg.Topic, Err: fmt.Errorf(
		"ccsarama: the reference with the message's key and headers would be at least %d bytes, over the producer's maximum message size of %d; nothing was stored: %w",
		least, limit, sarama.ErrMessageSizeTooLarge)}
}

// referenceFloor is the fewest bytes, as sarama counts them, of the
// reference to msg with a value of size bytes: msg's key and headers less
// what Offload removes or replaces, the contract's headers, and the
// shortest address.
func referenceFloor(c *claimcheck.Checker, msg *sarama.ProducerMessage, size int) int {
	n := msg.ByteSize(2)
	if msg.Value != nil {
		n -= msg.Value.Length()
	}
	for _, r := range msg.Headers {
		if claimcheck.Rewritten(string(r.Key)) {
			n -= len(r.Key) + len(r.Value) + headerFraming
		}
	}
	digits := len(strconv.Itoa(size))
	if c.Contract() == claimcheck.ContractAWSPointer {
		return n + len(claimcheck.AttrExtendedPayloadSize) + digits + headerFraming + c.MinReference()
	}
	return n + minContract - 1 + digits + c.MinReference()
}
