#!/usr/bin/env bash
# Builds bitcoind and bitcoin-cli (v31.99) from the Core tree vendored in the crates.io libbitcoinkernel-sys crate.
# ~10 min cold on 2 cores; cached.
source "$(dirname "$0")/lib.sh"
install() {
  if [ -x "$BITCOIND" ] && [ -x "$BITCOIN_CLI" ]; then log "bitcoin core cached at $CORE_DIR"; return; fi
  local work=$BMON_CACHE/core-build
  mkdir -p "$work"
  local crate=$work/libbitcoinkernel-sys-$KERNEL_SYS_VERSION
  if [ ! -d "$crate" ]; then
    log "downloading libbitcoinkernel-sys $KERNEL_SYS_VERSION from crates.io"
    # cargo fetches the .crate through the registry; a throwaway manifest pins it.
    local probe=$work/probe
    mkdir -p "$probe/src"; echo 'fn main() {}' > "$probe/src/main.rs"
    printf '[package]\nname="probe"\nversion="0.0.0"\nedition="2021"\n[dependencies]\nlibbitcoinkernel-sys="=%s"\n' \
      "$KERNEL_SYS_VERSION" > "$probe/Cargo.toml"
    (cd "$probe" && cargo fetch --quiet)
    local src
    src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "libbitcoinkernel-sys-$KERNEL_SYS_VERSION" | head -1)
    [ -n "$src" ] || die "libbitcoinkernel-sys source not found after cargo fetch"
    cp -r "$src" "$crate"
  fi
  local tree
  # the shallowest CMakeLists.txt that declares the Bitcoin Core project
  tree=$crate/bitcoin
  [ -f "$tree/CMakeLists.txt" ] || die "no Core source tree in $crate"
  log "configuring Core from $tree"
  cmake -S "$tree" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DENABLE_WALLET=OFF -DWITH_ZMQ=OFF \
    -DENABLE_IPC=OFF -DWITH_EMBEDDED_ASMAP=OFF -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF -DBUILD_GUI=OFF \
    -DBUILD_FUZZ_BINARY=OFF -DBUILD_UTIL=OFF -DBUILD_TX=OFF -DBUILD_WALLET_TOOL=OFF >"$work/cmake.log"
  log "building bitcoind and bitcoin-cli (about 10 minutes on 2 cores)"
  cmake --build "$work/build" --target bitcoind bitcoin-cli -j"$(nproc)" >"$work/build.log"
  mkdir -p "$CORE_DIR/bin"
  cp "$(find "$work/build" -type f -name bitcoind -perm -u+x | head -1)" "$BITCOIND"
  cp "$(find "$work/build" -type f -name bitcoin-cli -perm -u+x | head -1)" "$BITCOIN_CLI"
  rm -rf "$work"
  log "bitcoin core installed: $("$BITCOIND" -version | head -1)"
}
with_lock core install
