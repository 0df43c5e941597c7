/* test_endpoint.c - the endpointer on synthetic tone/silence layouts with known sample positions
 * (start with pre-roll, end with tail, clicks discarded, long pauses split, short ones do not,
 * max length forces an end) and on the real recording goforward.raw. */
#include <stdlib.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/endpoint.h"
#include "kameko/log.h"
#include "kameko/vad.h"

#define PI 3.14159265358979323846
#define MS 16 /* samples per ms */

typedef struct {
  int tone;
  int ms;
} seg;

/* Builds the signal: tone segments are a 3000-amplitude 440 Hz sine, silence is low noise. */
static int16_t *build(const seg *s, int n, size_t *len) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += (size_t)s[i].ms * MS;
  int16_t *x = malloc(total * sizeof *x);
  size_t k = 0;
  unsigned seed = 1;
  for (int i = 0; i < n; i++)
    for (size_t j = 0; j < (size_t)s[i].ms * MS; j++, k++) {
      seed = seed * 1103515245u + 12345u;
      int noise = (int)((seed >> 16) % 101) - 50; /* |noise| ~ 25 << 300 */
      x[k] = (int16_t)(s[i].tone ? 3000 * sin(2 * PI * 440 * (double)k / 16000) + noise : noise);
    }
  *len = total;
  return x;
}

#define MAXEV 32
typedef struct {
  kmk_endpoint_event ev[MAXEV];
  uint64_t at[MAXEV]; /* sample position when emitted */
  int16_t *pcm[MAXEV];
  int n;
} evlog;

static void run(kmk_endpoint *ep, const int16_t *x, size_t len, evlog *log, int finish) {
  kmk_vad *v = kmk_vad_new("energy", NULL);
  memset(log, 0, sizeof *log);
  for (size_t p = 0; p + KMK_VAD_FRAME <= len; p += KMK_VAD_FRAME) {
    kmk_vad_result r;
    kmk_vad_process(v, x + p, &r);
    kmk_endpoint_event ev;
    int rc = kmk_endpoint_process(ep, x + p, &r, &ev);
    CHECK(rc >= 0);
    if (rc == 1 && log->n < MAXEV) {
      log->at[log->n] = p + KMK_VAD_FRAME;
      if (ev.type == KMK_EP_SPEECH_END) {
        log->pcm[log->n] = kmk_endpoint_take_pcm(ep);
        CHECK(log->pcm[log->n] == ev.pcm);
      }
      log->ev[log->n++] = ev;
    }
  }
  kmk_endpoint_event ev;
  if (finish && kmk_endpoint_finish(ep, &ev) == 1 && log->n < MAXEV) {
    log->at[log->n] = len;
    if (ev.type == KMK_EP_SPEECH_END) log->pcm[log->n] = kmk_endpoint_take_pcm(ep);
    log->ev[log->n++] = ev;
  }
  kmk_vad_free(v);
}

static void log_free(evlog *log) {
  for (int i = 0; i < log->n; i++) free(log->pcm[i]);
}

static void test_single_utterance(void) {
  seg s[] = {{0, 1000}, {1, 1000}, {0, 2000}};
  size_t len;
  int16_t *x = build(s, 3, &len);
  kmk_endpoint *ep = kmk_endpoint_new(NULL); /* 250 / 1000 / 300 / 30000, tail 100 */
  evlog log;
  run(ep, x, len, &log, 1);
  CHECK_EQ_INT(log.n, 2);
  CHECK_EQ_INT(log.ev[0].type, KMK_EP_SPEECH_START);
  CHECK_EQ_INT(log.ev[0].start_sample, (1000 - 300) * MS);      /* pre-roll included */
  CHECK_EQ_INT(log.at[0], (1000 + 250) * MS);                    /* decided after min_speech */
  CHECK_EQ_INT(log.ev[1].type, KMK_EP_SPEECH_END);
  CHECK_EQ_INT(log.ev[1].start_sample, (1000 - 300) * MS);
  CHECK_EQ_INT(log.ev[1].length, (300 + 1000 + 100) * MS);      /* pre-roll + speech + tail */
  CHECK_EQ_INT(log.at[1], (2000 + 1000) * MS);                   /* after end_silence */
  CHECK_EQ_INT(log.ev[1].forced, 0);
  /* the PCM is the stream's samples at those positions */
  CHECK(log.pcm[1] != NULL);
  if (log.pcm[1])
    CHECK(memcmp(log.pcm[1], x + log.ev[1].start_sample, log.ev[1].length * 2) == 0);
  CHECK_EQ_INT(kmk_endpoint_get_state(ep), KMK_EP_SILENCE);
  CHECK_EQ_INT(kmk_endpoint_position(ep), len);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_click_discarded(void) {
  seg s[] = {{0, 500}, {1, 50}, {0, 1500}, {1, 100}, {0, 300}, {1, 100}, {0, 1200}};
  size_t len;
  int16_t *x = build(s, 7, &len);
  kmk_endpoint *ep = kmk_endpoint_new(NULL);
  evlog log;
  run(ep, x, len, &log, 1);
  /* 50 ms click, then two 100 ms bursts 300 ms apart (200 voiced ms < 250): both discarded */
  CHECK_EQ_INT(log.n, 2);
  CHECK_EQ_INT(log.ev[0].type, KMK_EP_DISCARD);
  CHECK_EQ_INT(log.ev[0].start_sample, 500 * MS);
  CHECK_EQ_INT(log.ev[0].length, 50 * MS);
  CHECK_EQ_INT(log.ev[1].type, KMK_EP_DISCARD);
  CHECK_EQ_INT(log.ev[1].start_sample, 2050 * MS);
  CHECK_EQ_INT(log.ev[1].length, 500 * MS);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_pauses(void) {
  /* 500 ms pause: one utterance; 1500 ms pause: split in two */
  seg s[] = {{0, 400}, {1, 800}, {0, 500}, {1, 800}, {0, 1500}, {1, 600}, {0, 1200}};
  size_t len;
  int16_t *x = build(s, 7, &len);
  kmk_endpoint *ep = kmk_endpoint_new(NULL);
  evlog log;
  run(ep, x, len, &log, 1);
  CHECK_EQ_INT(log.n, 4);
  CHECK_EQ_INT(log.ev[1].type, KMK_EP_SPEECH_END);
  CHECK_EQ_INT(log.ev[1].start_sample, 100 * MS);
  CHECK_EQ_INT(log.ev[1].length, (300 + 800 + 500 + 800 + 100) * MS);
  CHECK_EQ_INT(log.ev[2].type, KMK_EP_SPEECH_START);
  CHECK_EQ_INT(log.ev[2].start_sample, (4000 - 300) * MS);
  CHECK_EQ_INT(log.ev[3].type, KMK_EP_SPEECH_END);
  CHECK_EQ_INT(log.ev[3].length, (300 + 600 + 100) * MS);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_preroll_clamped_to_previous_end(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  p.end_silence_ms = 300;
  p.tail_ms = 100;
  p.preroll_ms = 500;
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  seg s[] = {{1, 400}, {0, 350}, {1, 400}, {0, 400}};
  size_t len;
  int16_t *x = build(s, 4, &len);
  evlog log;
  run(ep, x, len, &log, 1);
  CHECK_EQ_INT(log.n, 4);
  CHECK_EQ_INT(log.ev[0].start_sample, 0);           /* clamped to stream start */
  CHECK_EQ_INT(log.ev[1].length, 500 * MS);          /* 400 speech + 100 tail */
  CHECK_EQ_INT(log.ev[2].start_sample, 500 * MS);    /* clamped to the previous end */
  CHECK_EQ_INT(log.ev[3].start_sample, 500 * MS);
  CHECK_EQ_INT(log.ev[3].length, (250 + 400 + 100) * MS);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_max_length_forces_end(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  p.max_utterance_ms = 5000;
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  seg s[] = {{0, 1000}, {1, 7000}, {0, 1500}};
  size_t len;
  int16_t *x = build(s, 3, &len);
  evlog log;
  run(ep, x, len, &log, 1);
  CHECK_EQ_INT(log.n, 4);
  CHECK_EQ_INT(log.ev[1].type, KMK_EP_SPEECH_END);
  CHECK_EQ_INT(log.ev[1].forced, 1);
  CHECK_EQ_INT(log.ev[1].length, 5000 * MS);
  CHECK_EQ_INT(log.ev[2].type, KMK_EP_SPEECH_START);
  /* the continuation starts exactly where the forced cut ended: no audio lost */
  CHECK_EQ_INT(log.ev[2].start_sample, log.ev[1].start_sample + log.ev[1].length);
  CHECK_EQ_INT(log.ev[3].type, KMK_EP_SPEECH_END);
  CHECK_EQ_INT(log.ev[3].start_sample + log.ev[3].length, (8000 + 100) * MS);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_finish_and_untaken_pcm(void) {
  seg s[] = {{0, 200}, {1, 600}, {0, 200}};
  size_t len;
  int16_t *x = build(s, 3, &len);
  kmk_endpoint *ep = kmk_endpoint_new(NULL);
  kmk_vad *v = kmk_vad_new("energy", NULL);
  kmk_endpoint_event ev;
  int starts = 0;
  for (size_t p = 0; p + KMK_VAD_FRAME <= len; p += KMK_VAD_FRAME) {
    kmk_vad_result r;
    kmk_vad_process(v, x + p, &r);
    if (kmk_endpoint_process(ep, x + p, &r, &ev) == 1) starts += ev.type == KMK_EP_SPEECH_START;
  }
  CHECK_EQ_INT(starts, 1);
  CHECK_EQ_INT(kmk_endpoint_get_state(ep), KMK_EP_TRAILING);
  CHECK_EQ_INT(kmk_endpoint_finish(ep, &ev), 1); /* end of stream closes the utterance */
  CHECK_EQ_INT(ev.type, KMK_EP_SPEECH_END);
  CHECK_EQ_INT(ev.forced, 1);
  CHECK_EQ_INT(ev.start_sample, 0);
  CHECK_EQ_INT(ev.length, 900 * MS);
  /* not taken: the endpointer keeps ownership and recycles it (ASan/valgrind catch leaks) */
  kmk_endpoint_reset(ep);
  CHECK(kmk_endpoint_take_pcm(ep) == NULL);
  CHECK_EQ_INT(kmk_endpoint_finish(ep, &ev), 0);
  CHECK(kmk_endpoint_new(&(kmk_endpoint_params){.min_speech_ms = 250, .end_silence_ms = 1000,
                                                 .preroll_ms = 300, .max_utterance_ms = 100,
                                                 .tail_ms = 100}) == NULL); /* max too small */
  kmk_vad_free(v);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_sparse_bursts_bounded(void) {
  /* min_speech 2 s but only one 10 ms burst per 500 ms: MAYBE_SPEECH must not grow past the
   * utterance cap; it is discarded instead. */
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  p.min_speech_ms = 2000;
  p.end_silence_ms = 3000;
  p.max_utterance_ms = 2400;
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  CHECK(ep != NULL);
  seg s[20];
  for (int i = 0; i < 20; i += 2) {
    s[i] = (seg){1, 10};
    s[i + 1] = (seg){0, 490};
  }
  size_t len;
  int16_t *x = build(s, 20, &len);
  evlog log;
  run(ep, x, len, &log, 0);
  CHECK(log.n >= 1);
  CHECK_EQ_INT(log.ev[0].type, KMK_EP_DISCARD);
  CHECK_EQ_INT(log.ev[0].start_sample, 0);
  for (int i = 0; i < log.n; i++) CHECK(log.ev[i].type == KMK_EP_DISCARD);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

static void test_real_recording(void) {
  FILE *f = fopen("/usr/share/pocketsphinx/test/data/goforward.raw", "rb");
  if (!f) {
    fprintf(stderr, "skip: goforward.raw missing\n");
    return;
  }
  int16_t *x = malloc(100000 * sizeof *x);
  size_t n = fread(x, 2, 100000, f);
  fclose(f);
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  p.end_silence_ms = 500;
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evlog log;
  run(ep, x, n, &log, 1);
  /* "go forward ten meters": speech between about 0.6 s and 2.5 s of a 2.8 s file */
  int utts = 0;
  uint64_t covered = 0, first = UINT64_MAX, last = 0;
  for (int i = 0; i < log.n; i++) {
    if (log.ev[i].type != KMK_EP_SPEECH_END) continue;
    utts++;
    covered += log.ev[i].length;
    if (log.ev[i].start_sample < first) first = log.ev[i].start_sample;
    if (log.ev[i].start_sample + log.ev[i].length > last)
      last = log.ev[i].start_sample + log.ev[i].length;
    fprintf(stderr, "goforward: utterance %.2f..%.2f s%s\n", log.ev[i].start_sample / 16000.0,
            (log.ev[i].start_sample + log.ev[i].length) / 16000.0, log.ev[i].forced ? " (forced)" : "");
  }
  CHECK(utts >= 1 && utts <= 3);
  CHECK(covered > 16000);                 /* more than 1 s of speech found */
  CHECK(covered < n);                     /* and not the whole file */
  CHECK(first > 0 && last < n);
  log_free(&log);
  kmk_endpoint_free(ep);
  free(x);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_WARN);
  RUN(test_single_utterance);
  RUN(test_click_discarded);
  RUN(test_pauses);
  RUN(test_preroll_clamped_to_previous_end);
  RUN(test_max_length_forces_end);
  RUN(test_finish_and_untaken_pcm);
  RUN(test_sparse_bursts_bounded);
  RUN(test_real_recording);
  return check_done();
}
