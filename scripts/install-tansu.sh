#!/usr/bin/env bash
# Installs the tansu Kafka-protocol broker (crates.io) with its sqlite storage engine. ~11 min cold; cached.
source "$(dirname "$0")/lib.sh"
install() {
  if [ -x "$TANSU_BIN" ]; then log "tansu $TANSU_VERSION cached at $TANSU_BIN"; return; fi
  log "building tansu $TANSU_VERSION (about 11 minutes on 2 cores)"
  CARGO_TARGET_DIR=$BMON_CACHE/tansu-target cargo install tansu --version "$TANSU_VERSION" --locked \
    --features libsql,dynostore --root "$BMON_TOOLS/tansu-$TANSU_VERSION" --quiet
  rm -rf "$BMON_CACHE/tansu-target"
  log "tansu installed"
}
with_lock tansu install
