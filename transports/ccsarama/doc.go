// Package ccsarama is the claim-check transport for github.com/IBM/sarama:
// a message too big for its topic is stored in a stash on the way out, sent
// as a short stash address with the contract headers (claimcheck), and
// swapped back on the way in. Kafka's default 1 MiB limit then stops
// mattering to applications.
//
// # Producing
//
// The recommended path is to wrap the producer: WrapSyncProducer and
// WrapAsyncProducer offload before a message enters sarama, return stash
// failures to the caller (the async producer's Errors channel, as a
// *sarama.ProducerError holding the original message) and produce nothing
// that points to a stash not written. Keys, headers, partitions and
// timestamps are kept. The async producer offloads on lanes chosen by topic
// and key, off sarama's dispatcher goroutine: per-key order holds, and a
// slow upload stalls only its lane (WithLanes). Close drains.
//
// Both wrappers also claim-check a message that is under the checker's
// threshold but over the config's Producer.MaxMessageBytes (read when the
// producer is wrapped; the size as the checker counts a record: sarama's
// ByteSize and the batch header the broker counts), so that a limit set
// below the threshold (64 KiB, to match a topic's max.message.bytes, say)
// does not refuse what claimstash can carry. The policy still decides: with
// the checker's mode Never, or the producer's claimstash-offload: never,
// the message goes out as it is and sarama refuses it (a
// sarama.ConfigurationError naming Producer.MaxMessageBytes); a message
// already claim-checked is never claim-checked again. The AWS pointer
// contract offloads such messages too. A reference that could not fit
// Producer.MaxMessageBytes whatever its address (the key and the
// producer's headers alone are too big) is refused before its stash is
// written, with a *claimcheck.Error matching sarama.ErrMessageSizeTooLarge;
// one that misses only by its address's length is refused by sarama after
// the write, and its stash is left to its TTL.
//
// The drop-in path is a ProducerInterceptor in config.Producer.Interceptors.
// It needs no code change but runs on sarama's dispatcher goroutine (a slow
// upload stalls the producer) and cannot return errors: when a stash write
// fails, the message is left as it was and the failure is reported, so an
// oversized message fails with sarama's own size error. It does not see the
// config: WithMaxMessageBytes(cfg.Producer.MaxMessageBytes) gives it the cap,
// and it then claim-checks what would not fit it as the wrappers do; without,
// it offloads by the checker's threshold alone.
//
// Record headers need Kafka 0.11: the wrappers refuse an older
// config.Version with ErrVersion. Header keys are case-sensitive; the
// contract's names are lowercase. Headers adapts both sarama header types to
// claimcheck.Headers.
//
// # Consuming
//
// WrapConsumerGroupHandler rehydrates each message before your
// ConsumeClaim sees it. A message whose stash cannot be read (gone,
// expired, tampered with, or in a store this consumer may not read) is
// never delivered, so it cannot be marked. The checker decides what it
// means (claimcheck.Checker.Decide) and the wrapper translates: Redeliver
// (the default) stops the claim, ConsumeClaim returns the error and the
// group's committed offset stays on that message; Handled (the checker's
// OnRehydrateFailure handler routed it) and Discard (claimcheck.DiscardAfter)
// skip it. The wrapper has no failure options of its own.
//
// A plain sarama.Consumer is wrapped in one line, as otelsarama does it:
//
//	consumer, err := sarama.NewConsumer(addrs, cfg)
//	consumer = ccsarama.WrapConsumer(consumer, checker) // new
//
// WrapConsumer wraps each PartitionConsumer it makes with
// WrapPartitionConsumer, whose Messages channel yields rehydrated messages
// in order and never a still claim-checked one. A failure goes to Errors as
// a *sarama.ConsumerError holding a *RehydrateError, and the checker
// decides: Redeliver holds the partition and retries the message until its
// stash can be read, Discard (claimcheck.DiscardAfter) and Handled skip it.
//
// Both consumer wrappers read ahead: up to WithReadAhead messages of a claim
// or a partition (DefaultReadAhead, 8) are rehydrated at once, within
// WithReadAheadBytes of declared payload (DefaultReadAheadBytes, 64 MiB;
// one message alone may exceed it), and reach the application one at a time
// in partition order, nothing after an unreadable stash. When reads slow
// each other down (their average time over 1.5 times the fastest, as with
// a store on the same CPUs), a new one starts no sooner than their average
// duration over the window after the last, the rate the window sustains
// anyway, so that they end one after another rather than in bursts; reads
// whose time does not grow with their number start at once. The S3
// client's connection pool should hold at least the read-ahead times the
// partitions one process consumes, or reads beyond it open new
// connections: s3stash.Open keeps s3stash.IdleConnsPerHost (64) idle
// connections per host; a client of your own keeps the AWS SDK's 10 unless
// you raise them.
//
// The drop-in ConsumerInterceptor cannot hold a message back: one whose
// stash cannot be read is delivered still claim-checked (its value is the
// address, or an AWS pointer, its contract headers are there) and the
// failure is reported. Check IsClaimChecked before processing such a
// message.
//
// # Trade-offs
//
// A claim-checked message costs one stash write on send and one read on
// receive; below the checker's threshold a message passes untouched, for the
// price of encoding its value once to measure it. Kafka keeps only the
// address, so topic retention no longer bounds the payload's life: the
// stash's TTL does. Compaction and tombstones are unaffected (a nil value is
// never offloaded), but a compacted topic keeps the address of the latest
// value only; give stashes a TTL at least as long as your consumers may lag.
// For the same reason the checker's DeleteAfterAck (applied once the handler
// marks a message and its offset is committed) suits one consumer group
// without offset resets only: any other group, or a reset, may read a
// message again. Give the group handler wrapper WithCommitCheck with it, so
// that a commit that fails deletes nothing:
//
//	admin, err := sarama.NewClusterAdminFromClient(client)
//	...
//	h := ccsarama.WrapConsumerGroupHandler(app, checker, ccsarama.WithCommitCheck(admin, groupID))
package ccsarama
