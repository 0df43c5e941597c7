#!/usr/bin/env bash
# Memory safety of re-teaching the offline recognizer, under valgrind: test_stt_keywords' re-teach
# sequence (five name sets in a row, each followed by a transcription) must show no invalid read.
# Debian's sphinxbase 5prealpha reads out of bounds when words are added to a live trie LM; a
# crash from that depends on the heap layout, so only valgrind catches it every time (see
# engine/speech/stt_sphinx.c, lm_decoder). ~1 min. Args: BUILD_DIR SRC_DIR.
set -uo pipefail
build=$(cd "$1" && pwd)
if grep -q "^KMK_SANITIZE:BOOL=ON" "$build/CMakeCache.txt" 2>/dev/null; then
  echo "skipped: sanitizer build (valgrind cannot run it; the normal build runs this test)"
  exit 0
fi
if ! command -v valgrind >/dev/null 2>&1; then
  echo "FAIL: valgrind not found (tools/deps.sh installs it)"
  exit 1
fi
KMK_STT_TEST=reteach exec valgrind --quiet --error-exitcode=9 "$build/test_stt_keywords"
