#!/usr/bin/env bash
# Installs the Debian packages the crate stack and the test bed need. Idempotent: asks apt only for what is missing.
source "$(dirname "$0")/lib.sh"
PKGS=(cmake libclang-dev clang libcurl4-openssl-dev libzmq3-dev libboost-dev libevent-dev pkg-config
      litecoind prometheus prometheus-alertmanager python3-venv unzip patch chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then log "debian packages present"; exit 0; fi
log "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "debian packages installed"
