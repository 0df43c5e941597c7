#!/usr/bin/env bash
# Installs the Debian bookworm packages Kameko needs, only when something is missing.
# Called by `make deps` (and so by `make run` and `make test`). Uses sudo when not root.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  liblua5.4-dev lua-cjson-dev lua-cjson
  libopus-dev libsoxr-dev libcjson-dev libmpg123-dev
  libcurl4-openssl-dev libwebsockets-dev libwebsockets-evlib-uv
  libsodium-dev libuv1-dev libssl-dev
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us pocketsphinx-testdata
  libespeak-ng-dev espeak-ng-data flite1-dev
  clang libclang-rt-14-dev
  flite chromium valgrind openssl
)
# Extra packages for CI-only jobs (sanitizer runtime for clang builds).
if [ "${KMK_DEPS_EXTRA:-}" != "" ]; then
  # shellcheck disable=SC2206
  PKGS+=(${KMK_DEPS_EXTRA})
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js runs the protocol test peers; any node >= 18 with npm will do (a distro or vendor build).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: not root and no sudo; install these packages yourself: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
