/* fuzz_groq_json.c - libFuzzer target for a Groq (Whisper) transcription answer: kmk_groq_parse
 * on any bytes, then the hallucination gates on whatever it produced. No crash, no leak; a
 * success always has text and a confidence in [0, 1]. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    kmk_log_set_level(KMK_LOG_ERROR);
    quiet = 1;
  }
  kmk_transcript t;
  kmk_groq_segment segs[8];
  int n = 0;
  char lang[16];
  double dur;
  if (kmk_groq_parse((const char *)data, size, &t, segs, 8, &n, lang, sizeof lang, &dur) == 0) {
    if (!t.text || !(t.confidence >= 0 && t.confidence <= 1) || n < 0 || n > 8) abort();
    kmk_gate_opts o;
    kmk_gate_opts_default(&o);
    kmk_gate_reason r = kmk_gate_transcript(&o, t.text, t.lang, segs, n);
    if ((unsigned)r >= KMK_GATE__COUNT) abort();
    kmk_echo_memory m;
    kmk_echo_init(&m);
    kmk_echo_add(&m, t.text, 0);
    kmk_echo_match(&m, &o, t.text, 1);
    kmk_echo_free(&m);
    kmk_transcript_clear(&t);
  }
  return 0;
}
