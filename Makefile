# claimstash: the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 5s
TOOLS     := $(CURDIR)/.tools

.PHONY: all demo test vet race fuzz bench tools up down clean

all: test

## demo: the main job on the embedded default, no infrastructure needed.
demo:
	$(GO) run ./examples/demo

## test: vet, the race-enabled suite against real servers started in-process, then short fuzz runs.
test: vet tools race fuzz

vet:
	$(GO) vet $(PKGS)

race:
	CLAIMSTASH_TOOLS=$(TOOLS) $(GO) test -race -count=1 -timeout 40m $(PKGS)

## fuzz: each fuzz target for $(FUZZTIME).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseAddress$$' -fuzztime $(FUZZTIME) ./stash
	$(GO) test -run '^$$' -fuzz '^FuzzInline$$' -fuzztime $(FUZZTIME) ./stash

## bench: every benchmark; see BENCHMARKS.md.
bench: tools
	CLAIMSTASH_TOOLS=$(TOOLS) $(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m $(PKGS)

## tools: servers the tests start that are not Go libraries (built once, cached in .tools/).
tools:

clean:
	rm -rf $(TOOLS)
