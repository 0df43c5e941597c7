/* test_vad_stream.c - the turn-taking setup through kmk_speaker_stream, as every stream gets it
 * by default (p == NULL: "spectral" detector + kmk_endpoint_params_turn) on a real recording (goforward.raw) said twice with a 300 ms pause
 * (one turn) and then again after 2 s (a second turn), over steady white noise. Checks the event
 * grammar (START, then PAUSE/RESUME pairs, then END; PAUSE pcm borrowed, END pcm takeable) and
 * that the in-turn pause does not end the turn. Deterministic. */
#include <stdlib.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/stream.h"

#define RATE 16000

typedef struct {
  kmk_endpoint_event_type type[64];
  uint64_t start[64], len[64];
  int n, took;
  kmk_speaker_stream *s;
} evlog;

static void on_ev(void *ud, const kmk_stream_event *ev) {
  evlog *l = ud;
  if (l->n < 64) {
    l->type[l->n] = ev->type;
    l->start[l->n] = ev->start_sample;
    l->len[l->n] = ev->length;
    l->n++;
  }
  if (ev->type == KMK_EP_SPEECH_PAUSE) CHECK(ev->pcm != NULL && ev->length > 0);
  if (ev->type == KMK_EP_SPEECH_END) {
    int16_t *pcm = kmk_speaker_stream_take_pcm(l->s);
    CHECK(pcm != NULL);
    free(pcm);
    l->took++;
  }
}

static int16_t *load_raw(const char *path, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long bytes = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  int16_t *x = malloc((size_t)bytes);
  *n = fread(x, 2, (size_t)bytes / 2, fp);
  fclose(fp);
  return x;
}

static void push_noise(kmk_speaker_stream *s, size_t n, unsigned *seed) {
  int16_t buf[1600];
  while (n) {
    size_t k = n < 1600 ? n : 1600;
    for (size_t i = 0; i < k; i++) {
      *seed = *seed * 1103515245u + 12345u;
      buf[i] = (int16_t)((int)((*seed >> 16) % 201) - 100);
    }
    CHECK_EQ_INT(kmk_speaker_stream_push_s16(s, buf, k, RATE, 1), 0);
    n -= k;
  }
}

/* speech plus the same noise as the gaps, so the floor is steady */
static void push_speech(kmk_speaker_stream *s, const int16_t *x, size_t n, unsigned *seed) {
  int16_t *y = malloc(n * sizeof *y);
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    int v = x[i] + (int)((*seed >> 16) % 201) - 100;
    y[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
  }
  CHECK_EQ_INT(kmk_speaker_stream_push_s16(s, y, n, RATE, 1), 0);
  free(y);
}

static void test_turn_setup_events(void) {
  size_t n;
  int16_t *x = load_raw("/usr/share/pocketsphinx/test/data/goforward.raw", &n);
  if (!x) {
    fprintf(stderr, "skip: goforward.raw not installed\n");
    return;
  }
  /* keep the spoken part only (the file has ~0.4 s of silence at each end) */
  size_t a = RATE * 45 / 100, b = RATE * 240 / 100;
  CHECK(n > b);
  memmove(x, x + a, (b - a) * sizeof *x);
  n = b - a;
  kmk_stream_params p;
  kmk_stream_params_default(&p); /* the default IS the turn setup */
  CHECK_STR(p.vad_name, "spectral");
  CHECK_EQ_INT(p.endpoint.pause_ms, 200);
  CHECK_EQ_INT(p.endpoint.adaptive_end, 1);
  evlog l = {0};
  kmk_speaker_stream *s = kmk_speaker_stream_new(NULL, on_ev, &l);
  CHECK(s != NULL);
  l.s = s;
  unsigned seed = 7;
  push_noise(s, RATE, &seed);            /* 1 s of noise */
  push_speech(s, x, n, &seed);           /* turn 1, part 1 */
  push_noise(s, RATE * 3 / 10, &seed);   /* a 300 ms hesitation */
  push_speech(s, x, n, &seed);           /* turn 1, part 2 */
  push_noise(s, 2 * RATE, &seed);        /* turn over */
  size_t turn2 = kmk_speaker_stream_position(s);
  push_speech(s, x, n, &seed);           /* turn 2 */
  push_noise(s, 2 * RATE, &seed);
  CHECK_EQ_INT(kmk_speaker_stream_finish(s), 0);

  /* grammar: START (PAUSE (RESUME|END))* ... each utterance closed by END */
  int starts = 0, ends = 0, open = 0, paused = 0;
  for (int i = 0; i < l.n; i++) {
    switch (l.type[i]) {
      case KMK_EP_SPEECH_START: CHECK(!open); open = 1; starts++; break;
      case KMK_EP_SPEECH_PAUSE: CHECK(open && !paused); paused = 1; break;
      case KMK_EP_SPEECH_RESUME: CHECK(open && paused); paused = 0; break;
      case KMK_EP_SPEECH_END: CHECK(open); open = paused = 0; ends++; break;
      default: break;
    }
  }
  CHECK(!open);
  CHECK_EQ_INT(ends, l.took);
  /* exactly two turns: the 300 ms hesitation did not end the first one; it was reported as a
     tentative pause followed by a resume */
  CHECK_EQ_INT(starts, 2);
  int resumes = 0;
  for (int i = 0; i < l.n; i++) resumes += l.type[i] == KMK_EP_SPEECH_RESUME;
  CHECK(resumes >= 1);
  int second = -1;
  for (int i = 0; i < l.n; i++)
    if (l.type[i] == KMK_EP_SPEECH_START && l.start[i] + 300 * 16 >= turn2) {
      second = i;
      break;
    }
  CHECK(second > 0);
  kmk_speaker_stream_free(s);
  free(x);
}

int main(void) {
  RUN(test_turn_setup_events);
  return check_done();
}
