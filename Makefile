# The two commands of the quick start are `make run` and `make test`; everything else is a helper.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?=

.PHONY: all build run run-collector test test-unit test-integration test-asan bench deps clean fuzz

all: build

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# The whole stack without Docker (scripts/run-stack.sh): PostgreSQL, the collector, Prometheus,
# the Todo API and the workload generator; Ctrl-C stops them all. CONFIG=path still runs the
# collector alone, as run-collector does.
run:
ifeq ($(CONFIG),)
	BUILD=$(BUILD) scripts/run-stack.sh
else
	$(MAKE) run-collector CONFIG=$(CONFIG)
endif

# Runs the collector alone in the foreground: the embedded default config, or CONFIG=path.
run-collector: build
	./$(BUILD)/collector $(if $(CONFIG),--config $(CONFIG))

test: test-unit test-integration

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Integration tests drive the real binary with real OpenTelemetry clients (JS SDK, telemetrygen).
TOOLS            := $(CURDIR)/.tools
TELEMETRYGEN     := $(TOOLS)/telemetrygen
TELEMETRYGEN_VER := v0.161.0
# The reference OpenTelemetry Collector, for the differential tests only (never part of the product).
OTELCOL_REF      := $(TOOLS)/otelcol-ref

test-integration: build tests/integration/node_modules $(TELEMETRYGEN) $(OTELCOL_REF)
	OTC_BIN=$(CURDIR)/$(BUILD)/collector COLLECTOR_BIN=$(CURDIR)/$(BUILD)/collector \
	  TODO_API_BIN=$(CURDIR)/$(BUILD)/todo-api/todo-api TELEMETRYGEN=$(TELEMETRYGEN) \
	  OTELCOL_REF=$(OTELCOL_REF) PROMETHEUS_BIN=/usr/bin/prometheus \
	  node --test --test-concurrency=1 tests/integration/

# Built once with the collector's builder, both pinned (about two minutes on two cores).
$(OTELCOL_REF): tests/reference/manifest.yaml tests/reference/build.sh
	TOOLS=$(TOOLS) bash tests/reference/build.sh

$(TELEMETRYGEN):
	GOBIN=$(TOOLS) go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@$(TELEMETRYGEN_VER)

tests/integration/node_modules: tests/integration/package.json tests/integration/package-lock.json
	cd tests/integration && npm ci --no-audit --no-fund
	touch $@

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOTC_SANITIZE=ON

# The unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (leaks included).
test-asan: $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# Benchmarks (never part of make test): items per collector CPU-second, peak RSS and client
# latency per scenario, ours and the reference collector's side by side. SCENARIOS=... to pick
# (tests/bench/run.sh list); REPS, RATE, DURATION, SIZES tune the runs.
bench: build $(OTELCOL_REF)
	cmake --build $(BUILD) -j $(JOBS) --target bench_tools
	BUILD_DIR=$(BUILD) REF_BIN=$(OTELCOL_REF) tests/bench/run.sh $(SCENARIOS)

# libFuzzer targets (clang, own build dir build-fuzz), FUZZ_SECONDS each (default 20) from the
# committed corpus, then the kept crash inputs; fails on any crash (tests/fuzz/run.sh).
fuzz:
	tests/fuzz/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
