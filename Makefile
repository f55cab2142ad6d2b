# streamrec: `make run` runs the pipeline on embedded defaults; `make test`
# runs every test. Each installs what it needs first (scripts/deps.sh).

GO        ?= go
BIN       := bin/streamrec
GOFLAGS   ?=
DATA_DIR  ?= data/kafka
export GOFLAGS

.PHONY: all build run test vet fmt-check bench fuzz deps artifacts clean eval chaos

all: build

deps:
	@scripts/deps.sh

## artifacts: ONNX Runtime and the embedding model into .cache/ (pinned, sha256-checked; docs/model.md).
artifacts:
	@scripts/artifacts.sh

build:
	$(GO) build -o $(BIN) ./cmd/streamrec

## run: the embedded broker, every consumer kind, metrics on :9464.
run: deps artifacts build
	bash scripts/movielens.sh >/dev/null
	$(BIN) run --data-dir $(DATA_DIR) --demo

## eval: for_user on MovieLens through the whole pipeline, against baselines
## (docs/evaluation.md). EVAL_FLAGS passes options, e.g. EVAL_FLAGS=--users=100.
EVAL_FLAGS ?=
eval: deps artifacts build
	bash scripts/movielens.sh >/dev/null
	$(BIN) eval --log-level warn $(EVAL_FLAGS)

## test: vet, formatting, then every test (race detector on). The ClickHouse
## tests start and stop their own throwaway clickhouse-server (Debian's 18.16);
## the documented analyst queries also run on the current engine (26.9, PyPI's
## chdb-core, scripts/chdb.sh); the vector-store conformance suite and
## pipeline/qdrant run on the in-process fake and on a real Qdrant 1.17.1
## (scripts/qdrant.sh: the binary from ../shared/tools/qdrant or QDRANT_BIN;
## required when present, skipped when absent).
## Then the Kafka-facing suites again against Apache Kafka (scripts/kafka.sh:
## pinned jars from Maven Central, one KRaft node started for the run), as
## franz-go's CI runs its suite on kfake and on a real cluster: the consumer
## runtime through its SASL_SSL listener (SCRAM over TLS), SASL/TLS refusals,
## and the whole pipeline's Kafka-facing tests on its plaintext listener.
KAFKA_APP_TESTS := TestKcatInterop|TestKcatRecommend|TestRecommendEndToEnd|TestHostileInput|TestProduceAndConsume
test: deps artifacts vet fmt-check
	@scripts/clickhouse.sh install
	@scripts/kafka.sh install
	@scripts/chdb.sh install
	@scripts/qdrant.sh install
	@bash scripts/movielens.sh >/dev/null
	STREAMREC_REQUIRE_QDRANT=$$(scripts/qdrant.sh bin >/dev/null 2>&1 && echo 1) STREAMREC_REQUIRE_CLICKHOUSE=1 STREAMREC_REQUIRE_CHDB=1 STREAMREC_REQUIRE_KCAT=1 STREAMREC_REQUIRE_MODEL=1 STREAMREC_REQUIRE_DATASET=1 $(GO) test -race -count=1 -timeout 10m ./...
	KAFKA_SECURE=1 STREAMREC_REQUIRE_KCAT=1 STREAMREC_REQUIRE_MODEL=1 scripts/kafka.sh with sh -c '\
		$(GO) test -race -count=1 -p 1 -timeout 10m ./pipeline/kafka/ ./consumers/ ./producers/reco/ && \
		$(GO) test -race -count=1 -p 1 -timeout 10m -run "^($(KAFKA_APP_TESTS))$$" ./internal/app/'

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## chaos: the fault-injection suite (docs/reliability.md): kill -9 of run and
## of one consumer of a split deployment, ClickHouse stopped and frozen, with
## an acks=all producer; prints the table of acknowledged/present/lost/
## duplicated counts and recovery times. CHAOS_OUTAGE sets how long ClickHouse
## stays down (the documented run used 30s); CHAOS_REPORT writes the table.
## CHAOS_QUICK=1 skips the dynamic-membership failover (it waits out a 45 s
## session); .ci/run runs the quick suite.
CHAOS_OUTAGE ?= 10s
CHAOS_REPORT ?=
CHAOS_QUICK ?=
chaos: deps
	@scripts/clickhouse.sh install
	STREAMREC_CHAOS=1 STREAMREC_CHAOS_OUTAGE=$(CHAOS_OUTAGE) STREAMREC_CHAOS_REPORT=$(CHAOS_REPORT) STREAMREC_CHAOS_QUICK=$(CHAOS_QUICK) $(GO) test -count=1 -v -timeout 15m ./internal/chaos/

## bench: every benchmark in one run (docs/performance.md): the Kafka runtime,
## the embedding model, micro-batcher and tokenizer.
bench: deps artifacts
	bash scripts/clickhouse.sh install
	$(GO) test -run '^$$' -bench . -benchtime=1x -timeout 20m ./consumers/
	$(GO) test -run '^$$' -bench 'BenchmarkModel' -benchtime=2s -timeout 20m ./pipeline/onnx/
	$(GO) test -run '^$$' -bench 'BenchmarkCallers' -benchtime=1x -timeout 20m ./pipeline/onnx/
	$(GO) test -run '^$$' -bench 'BenchmarkOverhead' -benchtime=20x -timeout 20m ./pipeline/onnx/
	$(GO) test -run '^$$' -bench . -benchmem -timeout 20m ./pipeline/unigram/
	$(GO) test -run '^$$' -bench . -benchtime=1x -timeout 20m ./pipeline/localstore/
	$(GO) test -run '^$$' -bench Freshness -benchtime=1x -timeout 20m ./consumers/catalog/
	STREAMREC_REQUIRE_CLICKHOUSE=1 $(GO) test -run '^$$' -bench 'Ingest|DedupWindow' -benchtime=1x -timeout 20m ./consumers/clickstream/
	STREAMREC_REQUIRE_CLICKHOUSE=1 $(GO) test -run '^$$' -bench InsertEvents -benchtime=3x -timeout 20m ./pipeline/clickhouse/
	STREAMREC_REQUIRE_MODEL=1 $(GO) test -run '^$$' -bench Serving -benchtime=1x -timeout 20m ./internal/app/

## fuzz: a short run of every decoder fuzzer (FUZZTIME per target).
FUZZTIME ?= 15s
fuzz:
	@for f in $$($(GO) test -list '^Fuzz' ./schemas/ | grep '^Fuzz'); do \
		echo "== $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x ./schemas/ || exit 1; \
	done

clean:
	rm -rf bin data
