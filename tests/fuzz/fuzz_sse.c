/* fuzz_sse.c - libFuzzer target for the bytes an LLM server streams back: the SSE parser
 * (kmk_sse, fed in two splits) and the streamed-decision sentence scanner (kmk_sscan) on the
 * same bytes. Any input: no crash, no leak, events never larger than the limit, sentences are
 * non-empty and never exceed the decoded response. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

static int on_event(void *ud, const char *d, size_t n) {
  if (n > 4096 || d[n] != 0) abort();
  size_t *count = ud;
  (*count)++;
  return 0;
}

static void on_sentence(void *ud, const char *s, size_t n, int idx) {
  if (n == 0 || s[0] == ' ') abort();
  volatile char c = s[n - 1];
  (void)c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    kmk_log_set_level(KMK_LOG_ERROR);
    quiet = 1;
  }
  size_t count = 0, split = size ? data[0] % (size + 1) : 0;
  kmk_sse p;
  kmk_sse_init(&p, 4096, on_event, &count);
  int rc = kmk_sse_feed(&p, (const char *)data, split);
  if (rc == 0) kmk_sse_feed(&p, (const char *)data + split, size - split);
  kmk_sse_free(&p);

  kmk_sentence_scanner s;
  kmk_sscan_init(&s, on_sentence, NULL);
  kmk_sscan_feed(&s, (const char *)data, split);
  kmk_sscan_feed(&s, (const char *)data + split, size - split);
  if (strlen(kmk_sscan_response(&s)) > size * 4 + 4) abort();
  kmk_sscan_free(&s);
  return 0;
}
