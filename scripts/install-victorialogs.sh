#!/usr/bin/env bash
# Builds VictoriaLogs (it accepts Loki's push API; the Loki sink's tests push to it) from Debian's
# victoria-metrics 1.112 source package, with Go 1.23 from bookworm-backports and its Go dependencies
# as Debian golang-*-dev packages, in a private apt root (the system's apt config is not touched).
# Cached in $VLOGS_DIR; about a minute cold.
source "$(dirname "$0")/lib.sh"
VLOGS_BIN=$VLOGS_DIR/bin/victoria-logs
install() {
  if [ -x "$VLOGS_BIN" ]; then log "victorialogs cached at $VLOGS_BIN"; return; fi
  local w=$BMON_CACHE/victorialogs-build
  rm -rf "$w"; mkdir -p "$w"/{apt/lists/partial,apt/cache/archives/partial,debs,root,gopath/src/github.com/VictoriaMetrics}
  local mirror; mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources"
  local key=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] %s bookworm-backports main\ndeb [signed-by=%s] %s trixie main\ndeb-src [signed-by=%s] %s trixie main\n' \
    "$key" "$mirror" "$key" "$mirror" "$key" "$mirror" > "$w/apt/sources.list"
  local apt=(-o Dir::Etc::SourceList="$w/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o Dir::State::Lists="$w/apt/lists" -o Dir::Cache="$w/apt/cache" -o APT::Sandbox::User=root)
  apt-get "${apt[@]}" update -qq
  local go_deps=()
  for p in golang-github-victoriametrics-{easyproto,metrics,metricsql}-dev golang-github-cespare-xxhash-dev \
           golang-github-golang-snappy-dev golang-github-klauspost-compress-dev \
           golang-github-valyala-{fastjson,fastrand,fasttemplate,quicktemplate,bytebufferpool,histogram}-dev \
           golang-golang-x-sys-dev; do go_deps+=("$p/trixie"); done
  (cd "$w/debs" && apt-get "${apt[@]}" download -qq golang-1.23-go/bookworm-backports golang-1.23-src/bookworm-backports "${go_deps[@]}")
  for f in "$w"/debs/*.deb; do dpkg -x "$f" "$w/root"; done
  (cd "$w/debs" && apt-get "${apt[@]}" source --download-only -qq victoria-metrics=1.112.0+ds1-2)
  tar -xJf "$w"/debs/victoriametrics_1.112.0+ds1.orig.tar.xz -C "$w/gopath/src/github.com/VictoriaMetrics"
  ln -sfn VictoriaMetrics-1.112.0 "$w/gopath/src/github.com/VictoriaMetrics/VictoriaMetrics"
  (
    export GOROOT="$w/root/usr/lib/go-1.23" GOPATH="$w/gopath:$w/root/usr/share/gocode" GO111MODULE=off \
      CGO_ENABLED=0 GOCACHE="$w/gocache" GOTOOLCHAIN=local GOPROXY=off
    cd "$w/gopath/src/github.com/VictoriaMetrics/VictoriaMetrics"
    "$GOROOT/bin/go" build -o "$w/victoria-logs" ./app/victoria-logs
  )
  mkdir -p "$VLOGS_DIR/bin"
  mv "$w/victoria-logs" "$VLOGS_BIN"
  rm -rf "$w"
  log "victorialogs installed: $("$VLOGS_BIN" -version 2>&1 | head -1)"
}
with_lock victorialogs install
