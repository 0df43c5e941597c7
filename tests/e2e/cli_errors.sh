#!/usr/bin/env bash
# Bad input gets a clear error, the right exit code, and loses nothing:
# unknown flags and commands, missing/non-WAV/truncated/silent files, broken persona, bad settings.
set -uo pipefail
build=$1
src=$2
bin="$build/kameko"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# expect CODE PATTERN -- command...   (PATTERN is grepped in stderr+stdout)
expect() {
  local code=$1 pattern=$2
  shift 3
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -eq "$code" ] && grep -qE -- "$pattern" "$tmp/out"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: '$*' exited $rc (want $code), output:"
    sed 's/^/    /' "$tmp/out" | head -20
    echo "    (wanted /$pattern/)"
  fi
}

wav=/usr/share/pocketsphinx/test/data/cards/001.wav
echo "not a wav file" >"$tmp/text.wav"
head -c 30 "$wav" >"$tmp/header_only.wav"
head -c 20000 "$wav" >"$tmp/truncated.wav"
printf 'return {name = "Broken", languages = {"en"}, \n  wake_words = {"broken"\n' >"$tmp/broken.lua"
printf 'GROQ_BASE_URL=ftp://example\n' >"$tmp/bad.env"
printf 'THIS LINE IS WRONG\n' >"$tmp/malformed.env"

expect 0 'usage: kameko' -- "$bin" --help
expect 0 'GROQ_BASE_URL' -- "$bin" --help
expect 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
expect 2 "unknown flag '--bogus'" -- "$bin" --bogus
expect 2 "unknown flag '--bogus'" -- "$bin" replay --bogus
expect 2 'at least one --speaker' -- "$bin" replay --out "$tmp/o"
expect 2 '--out DIR is required' -- "$bin" replay --speaker a="$wav"
expect 2 "NAME=FILE.wav, got 'nofile'" -- "$bin" replay --speaker nofile --out "$tmp/o"
expect 2 "given twice" -- "$bin" replay --speaker a="$wav" --speaker a="$wav" --out "$tmp/o"
expect 2 "not a --speaker" -- "$bin" replay --speaker a="$wav" --at b=1 --out "$tmp/o"
expect 2 "NAME=SECONDS" -- "$bin" replay --speaker a="$wav" --at a=-3 --out "$tmp/o"
expect 1 "speaker 'a'.*/nonexistent.wav" -- "$bin" replay --speaker a=/nonexistent.wav --out "$tmp/o"
expect 1 "speaker 'a'.*(RIFF|WAVE)" -- "$bin" replay --speaker a="$tmp/text.wav" --out "$tmp/o"
expect 1 "speaker 'a'.*(truncated|data|fmt)" -- "$bin" replay --speaker a="$tmp/header_only.wav" --out "$tmp/o"
expect 1 "broken.lua:[0-9]+" -- "$bin" replay --fast --speaker a="$wav" --persona "$tmp/broken.lua" --out "$tmp/o"
expect 1 "nonexistent_persona" -- "$bin" replay --fast --speaker a="$wav" --persona /nonexistent_persona.lua --out "$tmp/o"
expect 2 "GROQ_BASE_URL='ftp://example'" -- "$bin" --env "$tmp/bad.env" demo
expect 2 "malformed.env: line 1" -- "$bin" --env "$tmp/malformed.env" demo
expect 2 "cannot read /nonexistent.env" -- "$bin" --env /nonexistent.env demo
expect 2 "KMK_LOG_LEVEL='loud'" -- "$bin" --log-level loud demo
expect 2 "LLM_BASE_URL='x'" -- "$bin" --set LLM_BASE_URL=x demo
# A secret given on the command line never shows up in output, even when the run fails.
expect 1 "speaker 'a'" -- "$bin" --set GROQ_API_KEY=gsk_TOPSECRET_1234 --log-level debug replay --speaker a=/nonexistent.wav --out "$tmp/o"
if grep -q TOPSECRET "$tmp/out"; then fail=$((fail + 1)); echo "FAIL: secret printed"; else pass=$((pass + 1)); fi

# --persona takes a name from the persona folder as well as a path.
expect 1 "personas/nosuch.lua" -- "$bin" replay --fast --speaker a="$wav" --persona nosuch --out "$tmp/o"
expect 0 "events" -- "$bin" replay --fast --speaker a="$wav" --persona kameko --out "$tmp/byname"

# Text chat on the timeline: a bad line is refused, a good one becomes a chat event.
expect 2 "NAME@SECONDS=TEXT, got 'erin=hi'" -- "$bin" replay --speaker a="$wav" --chat erin=hi --out "$tmp/o"
expect 2 "NAME@SECONDS=TEXT" -- "$bin" replay --speaker a="$wav" --chat "erin@x=hi" --out "$tmp/o"
expect 0 "events" -- "$bin" replay --fast --speaker a="$wav" --chat "erin@0.5=kameko, hello there" --out "$tmp/chat"
if grep -q '"type":"chat","speaker":"erin","text":"kameko, hello there"' "$tmp/chat/events.jsonl"; then
  pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: chat line missing from events.jsonl"; fi

# A truncated track still plays: complete frames are kept, the run succeeds with a warning.
expect 0 "events" -- "$bin" replay --fast --speaker a="$tmp/truncated.wav" --out "$tmp/trunc"
[ -s "$tmp/trunc/events.jsonl" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: no events for truncated track"; }

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
