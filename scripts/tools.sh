#!/usr/bin/env bash
# Installs every real part the tests use, cached under ~/.cache/bmon (override with BMON_CACHE).
# Idempotent: a warm cache makes this a few seconds. Cold, the broker and Core builds run side by side.
source "$(dirname "$0")/lib.sh"
here=$(dirname "$0")
bash "$here/install-debs.sh"
bash "$here/install-bsv.sh"
logs=$BMON_CACHE/logs; mkdir -p "$logs"
pids=()
bash "$here/install-tansu.sh" >"$logs/install-tansu.log" 2>&1 & pids+=($!)
bash "$here/install-core.sh" >"$logs/install-core.log" 2>&1 & pids+=($!)
bash "$here/install-victorialogs.sh" >"$logs/install-victorialogs.log" 2>&1 & pids+=($!)
bash "$here/install-npm.sh" >"$logs/install-npm.log" 2>&1 & pids+=($!)
bash "$here/install-rocksdb.sh" >"$logs/install-rocksdb.log" 2>&1 & pids+=($!)
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
cat "$logs"/install-{tansu,core,victorialogs,npm,rocksdb}.log >&2
[ $fail = 0 ] || die "a tool build failed; see $logs"
log "tools ready in $BMON_TOOLS"
