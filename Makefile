# lossbench: `make test` is the test command CI runs (.ci/run); `make chaos`
# runs the default scenario suite; `make bench` measures throughput.
# Everything a target needs is installed from here on a fresh machine.
SHELL := /bin/bash
GO ?= go
BIN := bin
OUT ?= results
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
export TESTCONTAINERS_RYUK_DISABLED := true
export GOFLAGS := -mod=mod

# deps: database servers for the SQL store's tests and the harness, and
# Chromium for the report's browser test (as root, from Debian's packages;
# does nothing when they are installed).
deps:
	bash chaos/dbserver/install.sh
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" -eq 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "deps: not root, cannot install chromium; the browser test will skip"; fi; \
	fi

.PHONY: all deps build test unit chaos-ci lint fmt-check vet staticcheck nats-server peers images chaos gate bench cpumsg bench-go fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/refbroker ./cmd/refbroker
	$(GO) build -o $(BIN)/lossbench ./cmd/lossbench

# test: formatting, vet, staticcheck, then every test with the race detector.
test: deps lint unit chaos-ci

# chaos-ci: the short subset of the DR matrix's scenarios that CI runs (one
# per HA strategy, on the local driver, each well under a minute, and two
# on docker); the rest
# run in make chaos and make gate, the Galera ones (jdbc-galera-*: a
# 3-node cluster takes 20 s to a minute to start) among them.
CI_SCENARIOS := journal-mirror-fsync-eio journal-machine-lost-disk-moved \
  shared-store-master-cut-from-storage replicated-master-killed \
  replicated-partition-witness cjdbc-one-db-lost
# CI_DOCKER_SCENARIOS run on the docker driver too (a site lost across two
# site networks, and a replicated pair), so CI checks the same verdicts in
# containers; the images are built here by the run.
CI_DOCKER_SCENARIOS := journal-batch-site-a-lost replicated-master-killed
chaos-ci: build
	rm -rf $(OUT)/ci $(OUT)/ci-docker
	$(BIN)/lossbench run --driver local --out $(OUT)/ci --run-id ci --broker-bin $(BIN)/refbroker \
	  $(patsubst %,scenarios/matrix/%.yaml,$(CI_SCENARIOS))
	$(BIN)/lossbench run --driver docker --out $(OUT)/ci-docker --run-id ci --broker-bin $(BIN)/refbroker \
	  $(patsubst %,scenarios/matrix/%.yaml,$(CI_DOCKER_SCENARIOS))

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

# unit: every test with -race; a failing package is retried once on its own
# and named as FLAKY (.ci/unit.sh).
unit:
	bash .ci/unit.sh

# nats-server: the peer broker of kind nats, built from its Go module at
# the version chaos/peers pins (outside this module, which does not import
# the server) into bin/, where lossbench finds it; a few seconds once the
# Go build cache has it, a minute or two the first time.
NATS_SERVER_VERSION := $(shell sed -n 's/^\tNATSServerVersion = "\(.*\)"/\1/p' chaos/peers/nats.go)
nats-server:
	GOBIN=$(abspath $(BIN)) GOFLAGS= $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

# peers: ActiveMQ and RabbitMQ from Debian's packages, for the scenarios
# of scenarios/peers (as root, only when missing).
peers:
	bash chaos/bench/install-peers.sh --rabbitmq

# images: the container images the docker driver runs (built here, never
# pulled; a run builds them too when missing).
images: build
	$(BIN)/lossbench images

# chaos: the default scenario suite (scenarios/suite) and the DR matrix's
# scenarios (scenarios/matrix) and the peer brokers' (scenarios/peers),
# once each, then the short DR matrix; results under $(OUT)/. FULL=1 runs
# lossbench matrix instead: every scenario with SEEDS seeds (default 3)
# and a bench of every strategy in the same run.
SEEDS ?= 3
chaos: deps build nats-server peers
ifeq ($(FULL),1)
	$(BIN)/lossbench matrix --seeds $(SEEDS) --out $(OUT) --broker-bin $(BIN)/refbroker
else
	$(BIN)/lossbench run --out $(OUT) scenarios/suite/*.yaml scenarios/matrix/*.yaml scenarios/peers/*.yaml
endif

# gate: the default suite and a short bench of the gated strategies, then the
# loss-regression gate against the checked-in baseline (loss budgets per
# cell, throughput floors as ratios within the bench). A failed expectation
# still goes on to the gate; an environment error stops. Writes
# $(OUT)/gate/gate.xml (JUnit) and report.html.
gate: deps build nats-server peers
	rm -rf $(OUT)/gate
	$(BIN)/lossbench run --driver local --out $(OUT) --run-id gate --broker-bin $(BIN)/refbroker scenarios/suite/*.yaml scenarios/matrix/*.yaml scenarios/peers/*.yaml || [ $$? -eq 1 ]
	$(BIN)/lossbench bench --out $(OUT)/gate --broker-bin $(BIN)/refbroker \
	  --targets memory,journal-always,journal-batch,journal-never,jdbc-sqlite,jdbc-postgres,journaled-jdbc-postgres --producers 1,16 --duration 3s --warmup 1s
	$(BIN)/lossbench gate --baseline scenarios/baseline.yaml $(OUT)/gate

# bench: end-to-end throughput and latency of refbroker's stores beside the
# disk's own fsync limit and ActiveMQ Classic (KahaDB, KahaDB without
# concurrent store and dispatch, JDBC on PostgreSQL), measured side by side
# in one run with the same client. The peers come from Debian's packages
# (chaos/bench/install-peers.sh, as root, only when missing). Measure
# RabbitMQ (STOMP and AMQP, classic and quorum) and NATS JetStream (default
# sync and always; nats-server built from its module) too with
# BENCH_TARGETS=refbroker,peers (installs rabbitmq-server).
BENCH_TARGETS ?= refbroker,activemq
comma := ,
bench: deps build nats-server
	bash chaos/bench/install-peers.sh $(if $(filter rabbitmq peers,$(subst $(comma), ,$(BENCH_TARGETS))),--rabbitmq)
	$(BIN)/lossbench bench --out $(OUT) --broker-bin $(BIN)/refbroker --targets $(BENCH_TARGETS) --duration 5s --warmup 1s

# cpumsg: the broker's CPU cost per persistent message without the machine's
# noise: instructions per message under valgrind's callgrind, journal-batch
# beside journal-never at 16 producers (lossbench bench --callgrind; about
# a minute). valgrind comes from Debian's package, installed here as root
# when missing (chaos/apt-install.sh).
cpumsg: build
	command -v valgrind >/dev/null 2>&1 || bash chaos/apt-install.sh cpumsg valgrind
	$(BIN)/lossbench bench --callgrind --out $(OUT) --broker-bin $(BIN)/refbroker \
	  --targets journal-batch,journal-never --producers 16 --duration 10s --warmup 2s

# bench-go: the Go micro-benchmarks (journal append, frame parser).
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./broker/...

# fuzz: a short run of every fuzz target (FUZZTIME=100000x executions each; a
# count, not a duration: Go 1.26 can end a timed fuzz run with a spurious
# "context deadline exceeded").
FUZZTIME ?= 100000x
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzReadFrame -fuzztime $(FUZZTIME) ./broker/stomp
	$(GO) test -run '^$$' -fuzz FuzzRecover -fuzztime $(FUZZTIME) ./broker/journal
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime $(FUZZTIME) ./broker/journal/mirror
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./scenarios/scenario
	$(GO) test -run '^$$' -fuzz FuzzDecodeHeaders -fuzztime $(FUZZTIME) ./broker/sqlstore
	$(GO) test -run '^$$' -fuzz FuzzReadFrame -fuzztime $(FUZZTIME) ./broker/replication
	$(GO) test -run '^$$' -fuzz FuzzJDBCPostgres -fuzztime $(FUZZTIME) ./chaos/peers
	$(GO) test -run '^$$' -fuzz FuzzParseCallgrindTotal -fuzztime $(FUZZTIME) ./chaos/bench
	$(GO) test -run '^$$' -fuzz FuzzParseProcStatCPU -fuzztime $(FUZZTIME) ./chaos/bench

clean:
	rm -rf $(BIN) $(OUT)
