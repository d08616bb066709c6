// Package peerbench holds benchmarks only: claimstash side by side with a
// claim-check built from Go CDK's mempubsub and memblob (raw bytes, MD5
// verified), measured interleaved in one run. See BENCHMARKS.md.
package peerbench
