#!/usr/bin/env bash
# Installs the tansu Kafka-protocol broker 0.6.0 from its crates.io source, with its sqlite storage
# engine and two documented patches (scripts/tansu/*.patch, see docs/design.md "The test bed's
# broker"): tansu 0.6.0 panics when an idempotent producer bumps its own epoch after a message
# timeout (librdkafka does, KIP-360), and its storage then refuses every request; and its fetch
# query reads every record from the offset asked to the partition's end, whatever the size
# limit, so a fetch far behind the end holds up every other client. ~11 min cold; cached.
source "$(dirname "$0")/lib.sh"
patches=$(cd "$(dirname "$0")/tansu" && pwd)
install() {
  if [ -x "$TANSU_BIN" ]; then log "tansu $TANSU_VERSION-$TANSU_BUILD cached at $TANSU_BIN"; return; fi
  log "building tansu $TANSU_VERSION-$TANSU_BUILD (about 11 minutes on 2 cores)"
  local work=$BMON_CACHE/tansu-src; rm -rf "$work"; mkdir -p "$work/fetch/src"
  # Unpack the published sources through cargo itself: a scratch manifest that depends on them.
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ntansu = "=%s"\ntansu-storage = "=%s"\n' \
    "$TANSU_VERSION" "$TANSU_VERSION" > "$work/fetch/Cargo.toml"
  echo 'fn main() {}' > "$work/fetch/src/main.rs"
  (cd "$work/fetch" && cargo fetch --quiet)
  local reg=${CARGO_HOME:-$HOME/.cargo}/registry/src
  cp -r "$(ls -d "$reg"/*/tansu-"$TANSU_VERSION" | head -1)" "$work/tansu"
  cp -r "$(ls -d "$reg"/*/tansu-storage-"$TANSU_VERSION" | head -1)" "$work/tansu/tansu-storage"
  for p in "$patches"/*.patch; do (cd "$work/tansu" && patch -s -p1 < "$p"); done
  printf '\n[patch.crates-io]\ntansu-storage = { path = "tansu-storage" }\n' >> "$work/tansu/Cargo.toml"
  # The published Cargo.lock pins every other dependency; cargo rewrites only the patched entry.
  (cd "$work/tansu" && CARGO_TARGET_DIR=$BMON_CACHE/tansu-target cargo build --release --quiet \
    --features libsql,dynostore --bin tansu)
  mkdir -p "$(dirname "$TANSU_BIN")"
  cp "$BMON_CACHE/tansu-target/release/tansu" "$TANSU_BIN"
  rm -rf "$BMON_CACHE/tansu-target" "$work"
  log "tansu installed"
}
with_lock tansu install
