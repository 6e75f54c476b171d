# bmon: every install, build and test step. Heavy artefacts are cached outside the clone:
#   ~/.cache/bmon/tools   tansu, bitcoind (Core v31.99), the BSV node    (BMON_CACHE overrides ~/.cache/bmon)
#   ~/.cache/bmon/target  the cargo target dir                            (CARGO_TARGET_DIR overrides)
SHELL := bash
BMON_CACHE ?= $(HOME)/.cache/bmon
export BMON_CACHE
export CARGO_TARGET_DIR ?= $(BMON_CACHE)/target
export CARGO_TERM_COLOR ?= never
CARGO ?= cargo
# RocksDB is built once into the tool cache (scripts/install-rocksdb.sh) and linked by every profile.
ROCKSDB_VERSION := $(shell awk '/^name = "librocksdb-sys"/ { getline; gsub(/[" ]/, ""); sub(/^version=/, ""); print; exit }' Cargo.lock)
export BMON_TOOLS ?= $(BMON_CACHE)/tools
export ROCKSDB_LIB_DIR ?= $(BMON_TOOLS)/rocksdb-$(ROCKSDB_VERSION)/lib
export ROCKSDB_STATIC ?= 1

.PHONY: help tools rocksdb build fmt fmt-check clippy unit integration test demo testbed-down clean-testbed bench

help:
	@echo "make test   - install tools (cached), fmt check, clippy -D warnings, unit and integration tests"
	@echo "make demo   - install tools; test bed, producers, logparse, propagation, Prometheus; prints block lags; Ctrl-C stops it"
	@echo "make tools  - only install/build the real parts into $(BMON_CACHE)/tools"

tools:
	@bash scripts/tools.sh

rocksdb:
	@bash scripts/install-rocksdb.sh >/dev/null

build: rocksdb
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: rocksdb
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: rocksdb
	$(CARGO) test --workspace --lib --bins

integration: tools rocksdb
	$(CARGO) test --workspace --tests

# One profile (dev) for everything: clippy's check build plus one test build.
test: fmt-check tools clippy
	$(CARGO) test --workspace

demo: tools rocksdb
	$(CARGO) build -p bmon
	$(CARGO_TARGET_DIR)/debug/bmon demo

testbed-down:
	$(CARGO) run -q -p bmon -- testbed down

# Benchmarks (release builds; figures go to BENCHMARKS.md by hand, with the command).
bench: tools rocksdb
	$(CARGO) bench -p bmon-schemas --bench codec
	$(CARGO) bench -p bmon-logparse --bench parse
	$(CARGO) build --release -p bmon --bins --examples
	$(CARGO_TARGET_DIR)/release/examples/mainnet_log /tmp/bmon-mainnet.log 1000000
	time $(CARGO_TARGET_DIR)/release/bmon parse-log /tmp/bmon-mainnet.log > /dev/null
	$(CARGO_TARGET_DIR)/release/examples/bench_propagation
	$(CARGO_TARGET_DIR)/release/examples/bench_producer
