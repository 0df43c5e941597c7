#!/usr/bin/env bash
# The browser room in headless Chromium against the real build/kameko (tests/peers/browser/room_test.mjs):
# two people join, one talks to the persona (transcripts, decisions, agent audio in the pages), then a
# third barges in (flush, playback stops, delay printed). Screenshots: BUILD_DIR/room_browser/.
# Needs node, flite, Debian's chromium and the peer's npm packages (`make test` installs all of them:
# tools/deps.sh, tools/peers.sh). Passes with "SKIPPED" only when Chromium is missing outside CI.
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
peer="$src/tests/peers/browser"

if ! command -v node >/dev/null 2>&1; then
  echo "FAIL: node not found (tools/deps.sh installs nodejs)"
  exit 1
fi
if [ ! -d "$peer/node_modules/playwright-core" ]; then
  echo "FAIL: $peer/node_modules is missing: run 'make peers' (tools/peers.sh runs npm ci there)"
  exit 1
fi
if ! command -v flite >/dev/null 2>&1; then
  echo "FAIL: flite not found (tools/deps.sh installs it; it synthesizes the fake microphones)"
  exit 1
fi
if [ ! -x "$build/kameko" ]; then
  echo "FAIL: $build/kameko not built"
  exit 1
fi
exec node "$peer/room_test.mjs" "$build" "$src"
