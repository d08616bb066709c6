package claimcheck

import "strings"

// A transport whose broker caps a message (NATS's max_payload, sarama's
// Producer.MaxMessageBytes) below the checker's threshold claim-checks a
// message over the cap that the checker would send as it is, and refuses,
// before anything is stored, one whose reference could not fit the cap
// either. These are the parts of that decision the contract decides; the
// transport counts its own framing.

// minAddress is the shortest stash address Offload writes: a one-character
// scheme, namespace and name, and the SHA-256 digest ("a://b/c.<64 hex>").
const minAddress = len("a://b/c.") + 64

// minPointer is the shortest AWS pointer body: a three-letter bucket and a
// key that is at least a name and its digest.
var minPointer = len(MarshalAWSPointer(AWSPointer{Bucket: "aaa", Key: "a." + strings.Repeat("0", 64)}))

// MinReference is the fewest bytes the body of a reference this checker
// writes can take: the shortest stash address, or with ContractAWSPointer
// the shortest pointer. A body no longer than it is never worth offloading
// for a cap, and a reference's least size is this plus the headers it
// keeps and the contract's.
func (c *Checker) MinReference() int {
	if c.contract == ContractAWSPointer {
		return minPointer
	}
	return minAddress
}

// ForLimit reports whether the policy lets a transport claim-check a
// message with headers h, which the checker would send as it is, because
// it is over a cap of the transport's own: the mode is Auto (in Never mode
// the message goes out as it is and the broker refuses it; in Always mode
// the checker offloads it anyway), the producer set no HeaderOffload
// override ("never" keeps it in the message), and h is not marked already
// (claimstash's contract or an AWS pointer: never claim-check twice). The
// transport then offloads it with the override set to "always" on its own
// copy of the headers.
func (c *Checker) ForLimit(h Headers) bool {
	if c.mode != Auto {
		return false
	}
	if _, set := h.Get(HeaderOffload); set {
		return false
	}
	return !IsClaimChecked(h) && !IsAWSPointer(h)
}

// Stores reports whether Offload of body with headers h would write a
// stash: the policy offloads the message (ShouldOffload, without its
// error), and under ContractAWSPointer it is not an AWS pointer, which
// Offload forwards as it is. A transport that refuses a reference too big
// for its broker's cap before anything is stored asks it once it has found
// that even the shortest reference could not fit.
func (c *Checker) Stores(body []byte, h Headers) bool {
	if c.contract == ContractAWSPointer && IsAWSPointer(h) {
		return false
	}
	off, err := c.ShouldOffload(body, h)
	return err == nil && off
}

// Rewritten reports whether Offload removes or sets the header named key
// in the reference it writes: the override (HeaderOffload), the contract's
// headers (HeaderVersion, HeaderSize) and the AWS pointer's size
// (AttrExtendedPayloadSize). A transport sizing a reference from the
// message's headers leaves these out and counts the contract's own.
func Rewritten(key string) bool {
	switch key {
	case HeaderOffload, HeaderVersion, HeaderSize, AttrExtendedPayloadSize:
		return true
	}
	return false
}
