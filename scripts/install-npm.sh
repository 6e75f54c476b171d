#!/usr/bin/env bash
# Installs the npm packages the tests use (@grafana/lezer-logql: every LogQL string bmon ships is
# parsed with Grafana's own LogQL grammar) into $BMON_CACHE/npm. Cached; pinned.
source "$(dirname "$0")/lib.sh"
NPM_DIR=$BMON_CACHE/npm
LEZER_LOGQL=0.3.0
install() {
  local have
  have=$(node -p "require('$NPM_DIR/node_modules/@grafana/lezer-logql/package.json').version" 2>/dev/null || true)
  if [ "$have" = "$LEZER_LOGQL" ]; then log "npm packages cached in $NPM_DIR"; return; fi
  command -v npm >/dev/null || die "npm is needed (Node.js)"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"name":"bmon-test-tools","private":true}' > "$NPM_DIR/package.json"
  npm install --prefix "$NPM_DIR" --silent --no-audit --no-fund "@grafana/lezer-logql@$LEZER_LOGQL"
  log "npm packages installed in $NPM_DIR"
}
with_lock npm install
