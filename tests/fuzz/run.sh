#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each (default 15), starting from the seed
# corpus in tests/fuzz/corpus/<target>/ when there is one. A crash fails the run and leaves the
# reproducer in BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-15}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/fuzz-artifacts"
n=0
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work="$build/fuzz-corpus/$name"
  mkdir -p "$work"
  seeds=()
  [ -d "$here/corpus/$name" ] && seeds+=("$here/corpus/$name")
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
    -artifact_prefix="$build/fuzz-artifacts/$name-" "$work" "${seeds[@]}" >"$build/$name.log" 2>&1 || {
    echo "fuzz: $name FAILED"; tail -40 "$build/$name.log"; exit 1; }
  tail -1 "$build/$name.log"
  n=$((n + 1))
done
echo "fuzz: $n targets ran clean"
