/* test_stt_synth.h - test-only helpers shared by the STT tests: synthesize a sentence with flite or
 * espeak-ng into a malloc'd 16 kHz buffer (espeak's 22050 Hz is resampled with libsoxr), with
 * 300 ms of silence on both sides, and a word-level edit distance. Single-threaded tests only. */
#ifndef KMK_TEST_STT_SYNTH_H
#define KMK_TEST_STT_SYNTH_H

#include <ctype.h>
#include <soxr.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/speech.h"

typedef struct {
  int16_t *pcm;
  size_t n, cap;
  int rate;
} pcmbuf;

static inline void pb_append(pcmbuf *b, const int16_t *pcm, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 16000;
    b->pcm = realloc(b->pcm, b->cap * sizeof *b->pcm);
  }
  if (pcm) memcpy(b->pcm + b->n, pcm, n * sizeof *pcm);
  else memset(b->pcm + b->n, 0, n * sizeof *pcm);
  b->n += n;
}

static inline int pb_chunk(void *ud, const int16_t *pcm, size_t n, int rate) {
  pcmbuf *b = ud;
  b->rate = rate;
  pb_append(b, pcm, n);
  return 0;
}

/* engine: "flite" or "espeak". Returns 16 kHz PCM (caller frees b.pcm), or b.n == 0 on failure. */
static inline pcmbuf synth16k(const char *engine, const char *voice, const char *text) {
  pcmbuf raw = {0}, out = {0};
  kmk_tts_voice v = {voice, 0, 0};
  int rc = !strcmp(engine, "flite")
               ? kmk_tts_flite_synth(text, &v, pb_chunk, &raw, NULL, NULL, 0)
               : kmk_tts_espeak_synth(text, &v, pb_chunk, &raw, NULL, NULL, 0);
  if (rc || raw.n == 0) {
    free(raw.pcm);
    return out;
  }
  pb_append(&out, NULL, 4800);
  if (raw.rate == 16000) {
    pb_append(&out, raw.pcm, raw.n);
  } else {
    size_t olen = (size_t)((double)raw.n * 16000 / raw.rate) + 16, odone = 0;
    int16_t *tmp = malloc(olen * sizeof *tmp);
    soxr_io_spec_t io = soxr_io_spec(SOXR_INT16_I, SOXR_INT16_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t e = soxr_oneshot(raw.rate, 16000, 1, raw.pcm, raw.n, NULL, tmp, olen, &odone,
                                  &io, &q, NULL);
    if (!e) pb_append(&out, tmp, odone);
    free(tmp);
  }
  pb_append(&out, NULL, 4800);
  out.rate = 16000;
  free(raw.pcm);
  return out;
}

/* Lowercases, drops punctuation (keeps apostrophes), splits on spaces. Returns the word count. */
static int split_words(const char *s, char words[][32], int max) {
  int n = 0;
  while (*s && n < max) {
    while (*s && !isalnum((unsigned char)*s) && *s != '\'' && !((unsigned char)*s & 0x80)) s++;
    if (!*s) break;
    int k = 0;
    while (*s && (isalnum((unsigned char)*s) || *s == '\'' || ((unsigned char)*s & 0x80))) {
      if (k < 31) words[n][k++] = (char)tolower((unsigned char)*s);
      s++;
    }
    words[n][k] = '\0';
    n++;
  }
  return n;
}

/* Word-level Levenshtein distance between reference and hypothesis; *nref gets the ref length. */
__attribute__((unused)) static int word_errors(const char *ref, const char *hyp, int *nref) {
  char r[64][32], h[64][32];
  int nr = split_words(ref, r, 64), nh = split_words(hyp, h, 64);
  int d[65][65];
  for (int i = 0; i <= nr; i++) d[i][0] = i;
  for (int j = 0; j <= nh; j++) d[0][j] = j;
  for (int i = 1; i <= nr; i++)
    for (int j = 1; j <= nh; j++) {
      int sub = d[i - 1][j - 1] + (strcmp(r[i - 1], h[j - 1]) != 0);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  *nref = nr;
  return d[nr][nh];
}

/* 1 if the transcript contains word w (case-insensitive, whole word). */
__attribute__((unused)) static int has_word(const char *text, const char *w) {
  char t[64][32], x[1][32];
  int n = split_words(text, t, 64);
  split_words(w, x, 1);
  for (int i = 0; i < n; i++)
    if (!strcmp(t[i], x[0])) return 1;
  return 0;
}

#endif
