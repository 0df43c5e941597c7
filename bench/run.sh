#!/usr/bin/env bash
# make bench: every benchmark, figures printed (copy them into the README with this command).
set -euo pipefail
build=${1:-build}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== bench_streams (Opus decode 16k mono + VAD + endpointing per stream: energy vs spectral)"
"$build/bench_streams"
echo "== bench_replay (offline pipeline stage latencies, demo conversation)"
"$build/bench_replay" 5
echo "== vad_eval (labelled noisy multi-speaker corpus, ~29 min, energy baseline vs spectral)"
"$build/vad_eval" 24
echo "== bench_reload (persona hot reload latency, Lua call per decision)"
"$build/bench_reload"
echo "== bench_out (agent output chain: push of a 5 s TTS chunk = resample only; pop = one Opus frame encoded, p50/p99)"
"$build/bench_out" 20
echo "== bench_discord_rx (Discord voice: decrypt + jitter + decode + VAD per stream; send pacing on the loop)"
"$build/bench_discord_rx" 10
echo "== bench_discord_gw (Discord gateway payload parsing, REST bucket bookkeeping)"
"$build/bench_discord_gw"
echo "== bench_room (browser room server: barge-in flush delays, agent frame pacing at a page, loop lateness; 8 pages)"
"$build/bench_room" 5 8
echo "== bench_cloud (cloud turn through the local provider peer with injected latencies: speech_end -> first audio, engine overhead; full answer vs early speech vs + speculative STT)"
"$build/bench_cloud" 50
