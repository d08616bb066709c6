# claimstash: the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 50000x
TOOLS     := $(CURDIR)/.tools
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all demo test vet race fuzz bench bench-all tools python kafka javapeer natscli rust up down clean

all: test

## demo: the main job on the embedded default, no infrastructure needed.
demo:
	$(GO) run ./examples/demo

## test: vet (go vet and staticcheck), the race-enabled suite against real servers started in-process, then short fuzz runs.
test: vet tools race fuzz

vet:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

race:
	CLAIMSTASH_TOOLS=$(TOOLS) $(GO) test -race -count=1 -timeout 40m $(PKGS)

## fuzz: each fuzz target for $(FUZZTIME) inputs (a count, not a duration: a duration races Go 1.26's fuzz
## coordinator at its deadline, go.dev/issue/75804, and fails with "context deadline exceeded" and no input).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseAddress$$' -fuzztime $(FUZZTIME) ./stash
	$(GO) test -run '^$$' -fuzz '^FuzzInline$$' -fuzztime $(FUZZTIME) ./stash
	$(GO) test -run '^$$' -fuzz '^FuzzStoredBytes$$' -fuzztime $(FUZZTIME) ./stash
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./interop/kstash
	$(GO) test -run '^$$' -fuzz '^FuzzObjectPath$$' -fuzztime $(FUZZTIME) ./service
	$(GO) test -run '^$$' -fuzz '^FuzzDuration$$' -fuzztime $(FUZZTIME) ./service
	$(GO) test -run '^$$' -fuzz '^FuzzParseRange$$' -fuzztime $(FUZZTIME) ./service
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./service
	$(GO) test -run '^$$' -fuzz '^FuzzLink$$' -fuzztime $(FUZZTIME) ./stash/links
	$(GO) test -run '^$$' -fuzz '^FuzzPresigned$$' -fuzztime $(FUZZTIME) ./osauth
	$(GO) test -run '^$$' -fuzz '^FuzzToken$$' -fuzztime $(FUZZTIME) ./osauth
	$(GO) test -run '^$$' -fuzz '^FuzzParseAWSPointer$$' -fuzztime $(FUZZTIME) ./claimcheck
	$(GO) test -run '^$$' -fuzz '^FuzzRehydrate$$' -fuzztime $(FUZZTIME) ./claimcheck

## bench: one recorded run of every benchmark BENCHMARKS.md quotes, command by command, with the load
## before each (into bench-out/; about 20 minutes). bench-all: every benchmark once, at Go's default benchtime.
bench: tools
	CLAIMSTASH_TOOLS=$(TOOLS) bash .ci/bench

bench-all: tools
	CLAIMSTASH_TOOLS=$(TOOLS) $(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m $(PKGS)

## tools: servers the tests start that are not Go libraries (built once, cached in .tools/).
## MinIO is built from the Go module proxy (its RELEASE tags are not semver, so it is pinned by
## pseudo-version) with `go install`, which keeps it out of our go.mod. A stamp file records the
## version built, so a repeated run does nothing and changing MINIO_VERSION rebuilds.
MINIO_VERSION ?= v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_STAMP   := $(TOOLS)/bin/.minio-$(MINIO_VERSION)
ifeq ($(wildcard $(TOOLS)/bin/minio),)
.PHONY: $(MINIO_STAMP)
endif

tools: $(MINIO_STAMP) natscli python kafka javapeer rust

## natscli: the NATS CLI (`nats`), which the interop tests run against what the nats backend and
## transports/ccnats store and send. Built from the Go module proxy with `go install` (outside our
## go.mod) into $(TOOLS)/bin, pinned; about two minutes the first time. A stamp records the version.
NATSCLI_VERSION ?= v0.5.0
NATSCLI_STAMP   := $(TOOLS)/bin/.natscli-$(NATSCLI_VERSION)
ifeq ($(wildcard $(TOOLS)/bin/nats),)
.PHONY: $(NATSCLI_STAMP)
endif
natscli: $(NATSCLI_STAMP)

$(NATSCLI_STAMP):
	@mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)
	@rm -f $(TOOLS)/bin/.natscli-*
	@touch $@

## python: the Python test peers (objectstore-client, msgpack, boto3, pytest, moto's SQS/SNS
## server, AWS's SQS and SNS extended clients, nats-py, and the AWS CLI 1.x) in a virtualenv,
## reinstalled when internal/pypeer/requirements.txt changes.
PY_REQS  := internal/pypeer/requirements.txt
PY_STAMP := $(TOOLS)/venv/.requirements
python: $(PY_STAMP)

$(PY_STAMP): $(PY_REQS)
	@mkdir -p $(TOOLS)
	test -x $(TOOLS)/venv/bin/python || python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check -r $(PY_REQS)
	@cp $(PY_REQS) $@

## javapeer: AWS's Java SQS and SNS extended clients (amazon-sqs-java-extended-client-lib,
## sns-extended-client, from Maven Central) as test peers of transports/ccsqs and transports/ccsns:
## internal/javapeer, built by mvn into $(TOOLS)/javapeer (its jar, and its runtime dependencies in
## lib/), in seconds once ~/.m2 has them. Rebuilt when the pom or the source changes.
JAVAPEER_DIR   := internal/javapeer
JAVAPEER_SRC   := $(JAVAPEER_DIR)/pom.xml $(wildcard $(JAVAPEER_DIR)/src/main/java/*.java)
JAVAPEER_STAMP := $(TOOLS)/javapeer/.built
ifeq ($(wildcard $(TOOLS)/javapeer/build/extended-peer.jar),)
.PHONY: $(JAVAPEER_STAMP)
endif
javapeer: $(JAVAPEER_STAMP)

$(JAVAPEER_STAMP): $(JAVAPEER_SRC)
	rm -rf $(TOOLS)/javapeer
	$(MVN) -B -q -Dstyle.color=never -f $(JAVAPEER_DIR)/pom.xml -Dpeer.out=$(TOOLS)/javapeer package dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(TOOLS)/javapeer/lib
	@touch $@

## rust: Sentry's Rust objectstore client (objectstore-client from crates.io) as a test peer of the
## server (service.TestOfficialRustClient): service/testdata/rust, built --locked into
## $(TOOLS)/bin/objectstore-rs-peer, about a minute the first time. Cargo rebuilds only what changed.
## Without a working cargo it is left out, and the test skips.
RUST_PEER := service/testdata/rust
rust:
	@if cargo --version >/dev/null 2>&1; then \
	  CARGO_TARGET_DIR=$(TOOLS)/rust-target cargo build --quiet --locked --manifest-path $(RUST_PEER)/Cargo.toml && \
	  mkdir -p $(TOOLS)/bin && cp $(TOOLS)/rust-target/debug/objectstore-rs-peer $(TOOLS)/bin/objectstore-rs-peer; \
	else echo "no working cargo: the Rust objectstore peer is not built, and its test skips"; fi

## kafka: the Apache Kafka broker the tests start (internal/kafkabroker): kafka_2.13 and its
## runtime dependencies, copied from Maven Central by mvn into $(TOOLS)/kafka/lib (under ten seconds
## on a fresh ~/.m2 with a fast link; about 45 MB). It runs on the machine's Java 17. The stamp
## records the pom it came from, so editing the pom (the Kafka version) copies them again.
KAFKA_POM   := internal/kafkabroker/pom.xml
KAFKA_STAMP := $(TOOLS)/kafka/.pom
MVN         ?= mvn
ifeq ($(wildcard $(TOOLS)/kafka/lib/kafka_2.13-*.jar),)
.PHONY: $(KAFKA_STAMP)
endif
kafka: $(KAFKA_STAMP)

$(KAFKA_STAMP): $(KAFKA_POM)
	@mkdir -p $(TOOLS)/kafka
	rm -rf $(TOOLS)/kafka/lib.new
	$(MVN) -B -q -Dstyle.color=never -f $(KAFKA_POM) dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(TOOLS)/kafka/lib.new
	rm -rf $(TOOLS)/kafka/lib && mv $(TOOLS)/kafka/lib.new $(TOOLS)/kafka/lib
	@cp $(KAFKA_POM) $@

$(MINIO_STAMP):
	@mkdir -p $(TOOLS)/bin
	@echo "building minio $(MINIO_VERSION) into $(TOOLS)/bin (about 5 minutes the first time)"
	GOBIN=$(TOOLS)/bin $(GO) install github.com/minio/minio@$(MINIO_VERSION)
	@rm -f $(TOOLS)/bin/.minio-*
	@touch $@

## up / down: Kafka, NATS and MinIO in Docker for the examples (see docker-compose.yml).
up:
	docker compose up -d --wait

down:
	docker compose down -v

clean:
	rm -rf $(TOOLS)
