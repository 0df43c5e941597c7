#!/usr/bin/env bash
# The browser room's AudioWorklets (web/capture-worklet.js, web/player-worklet.js) checked in Node
# without a browser: resampling to 16 kHz (level, frequency, anti-aliasing), the player's prebuffer,
# flush, overflow and resampling (tests/peers/browser/worklets_test.mjs). Args: BUILD_DIR SRC_DIR.
set -uo pipefail
src=$(cd "$2" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "FAIL: node not found (tools/deps.sh installs nodejs)"
  exit 1
fi
exec node "$src/tests/peers/browser/worklets_test.mjs" "$src"
