#!/usr/bin/env bash
# Installs the npm packages of the local protocol peers (tests/peers/*/), pinned by their
# package-lock.json. Runs `npm ci` only when a lockfile changed since the last install.
# Called by `make test`; a failure here fails the test run (the interop tests would otherwise skip).
set -euo pipefail
cd "$(dirname "$0")/.."
for lock in tests/peers/*/package-lock.json; do
  [ -f "$lock" ] || continue
  dir=$(dirname "$lock")
  stamp="$dir/node_modules/.kameko-lock"
  if [ -f "$stamp" ] && cmp -s "$lock" "$stamp"; then
    continue
  fi
  echo "peers: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$lock" "$stamp"
done
