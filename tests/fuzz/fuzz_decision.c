/* fuzz_decision.c - libFuzzer target for the LLM-answer parser and the decision validator
 * (engine/brain/decision.c): arbitrary bytes must parse or fail cleanly, never crash, leak or
 * read out of bounds, and a parsed decision must satisfy the invariants callers rely on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/brain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* first byte picks the reply cap and the hint, the rest is the text (not NUL-terminated) */
  size_t max = size ? 20 + data[0] * 4 : 0;
  const char *hint = size && (data[0] & 1) ? "ru" : "en";
  const char *text = size ? (const char *)data + 1 : "";
  size_t len = size ? size - 1 : 0;
  char *copy = malloc(len ? len : 1); /* exact size: ASan catches reads past len */
  if (!copy) return 0;
  memcpy(copy, text, len);
  kmk_decision d;
  char err[256];
  if (kmk_decision_parse_llm(copy, len, max, hint, &d, err, sizeof err) == 0) {
    if (!d.thought || !d.response) abort();
    if (d.should_speak && d.response[0] == '\0') abort();
    if (!d.should_speak && d.response[0] != '\0') abort();
    size_t cps = 0;
    for (const char *p = d.response; *p; p++) cps += ((unsigned char)*p & 0xC0) != 0x80;
    if (cps > max + 1) abort(); /* +1: the ellipsis */
    if (strlen(d.lang) < 2) abort();
    kmk_decision_clear(&d);
  } else if (err[0] == '\0') {
    abort(); /* a failure always says why */
  }
  free(copy);
  return 0;
}
