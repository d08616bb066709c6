// Package integration runs the whole pipeline end to end against real
// servers over real sockets. It has no API: everything is in its tests.
//
// Each scenario is written once and runs two ways, as two subtests:
//
//   - local: against servers the tests start themselves, with no Docker:
//     a kfake Kafka cluster (internal/kafkatest), an embedded nats-server with
//     JetStream (internal/natstest) and the MinIO binary that `make tools`
//     builds (internal/miniotest). It always runs in `make test`; without the
//     MinIO binary it skips, except under CI=true, where it fails.
//   - containers: against Kafka (KRaft), NATS (JetStream) and MinIO
//     containers started with testcontainers-go. Without a reachable Docker
//     engine it skips with a one-line reason.
//
// The scenarios:
//
//   - TestKafkaS3Watermill: the ccsarama producer wrapper stores large bodies
//     in an s3:// stash and sends their addresses through Kafka; a Watermill
//     Kafka subscriber with the ccwatermill decorator gets the payloads back.
//   - TestJetStreamToCoreNATS: a ccnats JetStream publisher with a nats://
//     stash; a core NATS subscriber on the same subjects rehydrates live.
//   - TestMixedVolume: the Kafka/S3 pipeline with mixed sizes, every payload
//     checked byte for byte, the count exact. CLAIMSTASH_INTEGRATION_SCALE
//     sets its size: 1 is 10,000 messages, about 2 GiB; the default, 0.1.
//   - TestS3KilledMidRun: the S3 server is killed while a producer sends and
//     restarted; sends that need it fail with a claim-check error and produce
//     nothing, and every reference Kafka holds is readable at the end.
//   - TestKafkaConsumerKilled, TestJetStreamConsumerKilled: a consumer dies
//     mid-message and another takes over: nothing is lost, the message it
//     died on is delivered again, and the duplicates, counted, are messages
//     the first one had received.
//
// BenchmarkKafkaS3Load is the load figure of BENCHMARKS.md. See README.md
// in this directory for what each mode needs and how long it takes.
package integration
