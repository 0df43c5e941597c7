/* fuzz_edge_frame.c - libFuzzer target for what an Edge-TTS server sends: binary audio frames
 * (2-byte header length, header lines, audio), text frames (headers + body), and the MP3 bytes
 * handed to the decoder; plus the text chunker on the same bytes as if they were reply text.
 * Any input: no crash; slices stay inside the frame; chunks stay within the byte limit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

static int pcm(void *ud, const int16_t *p, size_t n, int rate) {
  if (rate <= 0 || rate > 192000) abort();
  return 0;
}

static int chunk(void *ud, const char *c, size_t n) {
  if (n == 0 || n > 64 || strlen(c) != n) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    kmk_log_set_level(KMK_LOG_ERROR);
    quiet = 1;
  }
  char path[32], ctype[64];
  const uint8_t *audio = NULL;
  size_t alen = 0;
  if (kmk_edge_parse_binary(data, size, path, sizeof path, ctype, sizeof ctype, &audio, &alen) == 0) {
    if (audio < data || audio + alen != data + size) abort();
    kmk_mp3 *m = kmk_mp3_new();
    if (m) {
      kmk_mp3_feed(m, audio, alen, pcm, NULL);
      kmk_mp3_free(m);
    }
  }
  kmk_edge_parse_text_path((const char *)data, size, path, sizeof path);
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  kmk_edge_chunk_text(text, 64, chunk, NULL);
  free(text);
  return 0;
}
