#!/usr/bin/env bash
# Builds RocksDB's static library once, from the source librocksdb-sys bundles, into
# ~/.cache/bmon/tools/rocksdb-<version>. The Makefile points librocksdb-sys at it (ROCKSDB_LIB_DIR,
# ROCKSDB_STATIC), so the dev and release profiles link one build instead of each compiling its
# 343 C++ files (55 min wall here, sharing 2 cores with the Core, tansu and cargo builds).
# Idempotent: a built library is kept; an interrupted build resumes.
# Prints the library directory on stdout.
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd)
# A package's version in Cargo.lock.
locked() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/[" ]/, ""); sub(/^version=/, ""); print; exit }' "$root/Cargo.lock"; }
version=$(locked librocksdb-sys)
[ -n "$version" ] || die "librocksdb-sys is not in Cargo.lock"
out=$BMON_TOOLS/rocksdb-$version
if [ -f "$out/lib/librocksdb.a" ]; then echo "$out/lib"; exit 0; fi

# The crates' sources, fetched by cargo into its registry.
(cd "$root" && cargo fetch --locked -q) >&2
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
src=$(ls -d "$registry"/*/"librocksdb-sys-$version"/rocksdb | head -1)
[ -f "$src/Makefile" ] || die "no RocksDB source for librocksdb-sys $version under $registry"
lz4=$(ls -d "$registry"/*/"lz4-sys-$(locked lz4-sys)"/liblz4/lib | head -1)
zstd=$(ls -d "$registry"/*/"zstd-sys-$(locked zstd-sys)"/zstd/lib | head -1)
[ -d "$lz4" ] && [ -d "$zstd" ] || die "no lz4-sys or zstd-sys source under $registry"

build() {
  [ -f "$out/lib/librocksdb.a" ] && return 0 # built meanwhile, by a parallel make target
  log "building RocksDB $version (static, -O2) into $out"
  work=$BMON_TOOLS/.rocksdb-build-$version
  # An interrupted build resumes (make is incremental); the source is copied once.
  if [ ! -f "$work/.copied" ]; then
    rm -rf "$work" && mkdir -p "$work" && cp -a "$src/." "$work/" && touch "$work/.copied"
  fi
  # Warnings are not errors: with Zstandard support some parameters go unused, and RocksDB's
  # Makefile would stop there. ALLOW_BUILD_PARAMETER_CHANGE lets an interrupted build resume when
  # only such a flag changed (the directory is per version; the flags are these).
  # Only LZ4 and Zstandard, as bmon's features ask; every other optional library is off, so linking
  # needs nothing but the lz4-sys and zstd-sys archives cargo builds anyway. Their headers are used.
  export ROCKSDB_DISABLE_SNAPPY=1 ROCKSDB_DISABLE_ZLIB=1 ROCKSDB_DISABLE_BZIP=1 ROCKSDB_DISABLE_GFLAGS=1 \
    ROCKSDB_DISABLE_JEMALLOC=1 ROCKSDB_DISABLE_TCMALLOC=1 ROCKSDB_DISABLE_NUMA=1 ROCKSDB_DISABLE_MEMKIND=1 \
    ROCKSDB_DISABLE_BENCHMARK=1 ROCKSDB_DISABLE_BACKTRACE=1
  (cd "$work" && make -s -j"$(nproc)" static_lib DEBUG_LEVEL=0 PORTABLE=1 USE_RTTI=1 DISABLE_WARNING_AS_ERROR=1 ALLOW_BUILD_PARAMETER_CHANGE=1 \
    EXTRA_CXXFLAGS="-fPIC -I$lz4 -I$zstd" >&2) || die "RocksDB build failed in $work"
  grep -q -- "-DLZ4" "$work/make_config.mk" && grep -q -- "-DZSTD" "$work/make_config.mk" \
    || die "RocksDB was built without LZ4 or Zstandard (see $work/make_config.mk)"
  mkdir -p "$out/lib"
  cp "$work/librocksdb.a" "$out/lib/"
  # RocksDB's Makefile compiles with -g: 1.2 GB of debug info that every link (and the rlib that
  # bundles the archive) would copy. Without it the archive is about 40 MB.
  strip --strip-debug "$out/lib/librocksdb.a"
  rm -rf "$work"
  log "RocksDB $version ready in $out"
}
# `make -j` may run this from two targets at once; they share the work directory.
with_lock rocksdb build
echo "$out/lib"
