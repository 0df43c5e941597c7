/* test_endpoint_turn.c - the endpointer's turn-taking extensions, driven by scripted VAD
 * decisions: SPEECH_PAUSE / SPEECH_RESUME, the adaptive end silence learning the speaker's pauses
 * (and correcting itself after a cut), the defaults staying exactly the old behaviour. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/endpoint.h"

#define F KMK_VAD_FRAME

typedef struct {
  kmk_endpoint_event_type type[64];
  int frame[64]; /* frame index (0-based) that emitted the event */
  uint64_t len[64];
  int n;
} evs;

/* Feeds `ms` of frames with this VAD result (is_speech, score), recording events. */
static void feed_vr(kmk_endpoint *ep, int sp, float score, int ms, int *fidx, evs *e) {
  int16_t fr[F];
  memset(fr, 0, sizeof fr);
  kmk_vad_result r = {sp, score, 0};
  for (int k = 0; k < ms / 10; k++) {
    kmk_endpoint_event ev;
    int rc = kmk_endpoint_process(ep, fr, &r, &ev);
    CHECK(rc >= 0);
    if (rc == 1 && e->n < 64) {
      e->type[e->n] = ev.type;
      e->frame[e->n] = *fidx;
      e->len[e->n] = ev.length;
      e->n++;
    }
    (*fidx)++;
  }
}

/* Feeds `ms` of speech (sp = 1) or silence. */
static void feed(kmk_endpoint *ep, int sp, int ms, int *fidx, evs *e) {
  feed_vr(ep, sp, sp ? 1.0f : 0.0f, ms, fidx, e);
}

/* Feeds `ms` of non-speech frames that the VAD nevertheless scores `score`. */
static void feed_scored(kmk_endpoint *ep, float score, int ms, int *fidx, evs *e) {
  feed_vr(ep, 0, score, ms, fidx, e);
}

static void test_defaults_unchanged(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  CHECK_EQ_INT(p.end_silence_ms, 1000);
  CHECK_EQ_INT(p.pause_ms, 0);
  CHECK_EQ_INT(p.adaptive_end, 0);
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evs e = {0};
  int f = 0;
  feed(ep, 1, 500, &f, &e);
  feed(ep, 0, 400, &f, &e); /* a pause: no event by default */
  feed(ep, 1, 500, &f, &e);
  feed(ep, 0, 1000, &f, &e);
  CHECK_EQ_INT(e.n, 2);
  CHECK_EQ_INT(e.type[0], KMK_EP_SPEECH_START);
  CHECK_EQ_INT(e.type[1], KMK_EP_SPEECH_END);
  CHECK_EQ_INT(e.frame[1], 50 + 40 + 50 + 99); /* 1000 ms of silence */
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 1000);
  kmk_endpoint_free(ep);
}

static void test_pause_and_resume(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_turn(&p);
  CHECK_EQ_INT(p.pause_ms, 200);
  CHECK_EQ_INT(p.end_silence_ms, 550);
  CHECK_EQ_INT(p.min_end_silence_ms, 450);
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evs e = {0};
  int f = 0;
  feed(ep, 1, 500, &f, &e);
  feed(ep, 0, 300, &f, &e);
  feed(ep, 1, 300, &f, &e);
  feed(ep, 0, 700, &f, &e);
  CHECK_EQ_INT(e.n, 5);
  CHECK_EQ_INT(e.type[0], KMK_EP_SPEECH_START);
  CHECK_EQ_INT(e.type[1], KMK_EP_SPEECH_PAUSE);
  CHECK_EQ_INT(e.frame[1], 50 + 19); /* the 20th silent frame */
  /* the utterance so far: 300 ms pre-roll is not available at stream start; 500 ms + 100 ms tail */
  CHECK_EQ_INT(e.len[1], (500 + 100) * 16);
  CHECK_EQ_INT(e.type[2], KMK_EP_SPEECH_RESUME);
  CHECK_EQ_INT(e.frame[2], 80);
  CHECK_EQ_INT(e.type[3], KMK_EP_SPEECH_PAUSE);
  CHECK_EQ_INT(e.type[4], KMK_EP_SPEECH_END);
  CHECK_EQ_INT(e.frame[4], 110 + 54); /* nothing learnt yet: 550 ms */
  kmk_endpoint_free(ep);
}

static void test_adaptive_learns_pauses(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_turn(&p);
  p.min_end_silence_ms = 250;
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evs e = {0};
  int f = 0;
  feed(ep, 1, 400, &f, &e);
  for (int i = 0; i < 2; i++) {
    feed(ep, 0, 200, &f, &e);
    feed(ep, 1, 400, &f, &e);
  }
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 550); /* 2 pauses: not enough yet */
  feed(ep, 0, 200, &f, &e);
  feed(ep, 1, 400, &f, &e);
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 250); /* 200 + 30 margin, clamped to the floor */
  CHECK_EQ_INT(kmk_endpoint_get_state(ep), KMK_EP_SPEECH);
  kmk_endpoint_free(ep);

  kmk_endpoint_params_turn(&p); /* floor 450 */
  ep = kmk_endpoint_new(&p);
  memset(&e, 0, sizeof e);
  f = 0;
  feed(ep, 1, 400, &f, &e);
  for (int i = 0; i < 3; i++) {
    feed(ep, 0, 200, &f, &e);
    feed(ep, 1, 400, &f, &e);
  }
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 450);
  /* short silences (< 100 ms) are articulation, not pauses: nothing changes */
  feed(ep, 0, 50, &f, &e);
  feed(ep, 1, 100, &f, &e);
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 450);
  int before = e.n;
  feed(ep, 0, 450, &f, &e); /* the turn ends 450 ms into this silence */
  CHECK_EQ_INT(e.n, before + 2);
  CHECK_EQ_INT(e.type[before + 1], KMK_EP_SPEECH_END);
  kmk_endpoint_free(ep);
}

static void test_cut_corrects_itself(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_turn(&p);
  p.min_end_silence_ms = 300;
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evs e = {0};
  int f = 0;
  feed(ep, 1, 400, &f, &e);
  for (int i = 0; i < 3; i++) {
    feed(ep, 0, 150, &f, &e);
    feed(ep, 1, 400, &f, &e);
  }
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 300);
  feed(ep, 0, 350, &f, &e); /* a longer hesitation: cut at 300 ms */
  CHECK_EQ_INT(e.type[e.n - 1], KMK_EP_SPEECH_END);
  feed(ep, 1, 400, &f, &e); /* the speaker goes on 50 ms after the end: that end was a cut */
  /* pauses 150, 150, 150, 350: 350 + (350 - 150) / 4 + 30 */
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 430);
  feed(ep, 0, 360, &f, &e); /* the same pause again is now tolerated */
  CHECK(e.type[e.n - 1] != KMK_EP_SPEECH_END);
  feed(ep, 1, 300, &f, &e);
  /* a real gap (> end + 100 ms) after an end teaches nothing */
  feed(ep, 0, 1500, &f, &e);
  feed(ep, 1, 300, &f, &e);
  /* 360 was learnt in-turn (360 + 210 / 5 + 30), the 1.5 s gap was not */
  CHECK_EQ_INT(kmk_endpoint_end_silence_ms(ep), 430);
  kmk_endpoint_free(ep);
}

static void test_pause_not_after_end(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  p.end_silence_ms = 300;
  p.pause_ms = 300; /* not shorter than the end: never emitted */
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evs e = {0};
  int f = 0;
  feed(ep, 1, 400, &f, &e);
  feed(ep, 0, 400, &f, &e);
  CHECK_EQ_INT(e.n, 2);
  CHECK_EQ_INT(e.type[1], KMK_EP_SPEECH_END);
  kmk_endpoint_free(ep);
  CHECK_STR(kmk_endpoint_event_name(KMK_EP_SPEECH_PAUSE), "speech_pause");
  CHECK_STR(kmk_endpoint_event_name(KMK_EP_SPEECH_RESUME), "speech_resume");
}

/* Named presets: each ends a fresh speaker's turn after its own start value, snappy < turn <
 * patient; "classic" is exactly the defaults; an unknown name falls back to "turn" and says so. */
static void test_presets(void) {
  static const char *names[] = {"snappy", "turn", "patient"};
  static const int end_ms[] = {450, 550, 900}, pause_ms[] = {150, 200, 250};
  for (int i = 0; i < 3; i++) {
    kmk_endpoint_params p;
    CHECK_EQ_INT(kmk_endpoint_params_preset(&p, names[i]), 0);
    CHECK_EQ_INT(p.adaptive_end, 1);
    kmk_endpoint *ep = kmk_endpoint_new(&p);
    CHECK(ep != NULL);
    evs e = {0};
    int f = 0;
    feed(ep, 1, 500, &f, &e);
    feed(ep, 0, 1200, &f, &e);
    CHECK_EQ_INT(e.n, 3);
    CHECK_EQ_INT(e.type[1], KMK_EP_SPEECH_PAUSE);
    CHECK_EQ_INT(e.frame[1], 50 + pause_ms[i] / 10 - 1);
    CHECK_EQ_INT(e.type[2], KMK_EP_SPEECH_END);
    CHECK_EQ_INT(e.frame[2], 50 + end_ms[i] / 10 - 1);
    kmk_endpoint_free(ep);
  }
  kmk_endpoint_params a, b;
  kmk_endpoint_params_turn(&a);
  CHECK_EQ_INT(kmk_endpoint_params_preset(&b, "turn"), 0);
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  kmk_endpoint_params_default(&a);
  CHECK_EQ_INT(kmk_endpoint_params_preset(&b, "classic"), 0);
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  CHECK_EQ_INT(kmk_endpoint_params_preset(&b, NULL), 0);
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  CHECK_EQ_INT(kmk_endpoint_params_preset(&b, "no-such-room"), KMK_AUDIO_EINVAL);
  kmk_endpoint_params_turn(&a);
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  CHECK_EQ_INT(kmk_endpoint_params_preset(NULL, "turn"), KMK_AUDIO_EINVAL);
}

/* An adaptive end due on a frame the VAD scores as strong speech (a restart it has not confirmed
 * yet) waits up to 5 frames; the classic endpointer never waits. */
static void test_end_waits_for_strong_onset(void) {
  kmk_endpoint_params p;
  kmk_endpoint_params_turn(&p); /* ceiling 550 ms: 55 frames before anything is learnt */
  kmk_endpoint *ep = kmk_endpoint_new(&p);
  evs e = {0};
  int f = 0;
  feed(ep, 1, 500, &f, &e);
  feed_scored(ep, 0.0f, 540, &f, &e); /* 54 quiet frames */
  feed_scored(ep, 1.0f, 30, &f, &e);  /* the end falls due on a strong frame: waits */
  feed(ep, 1, 300, &f, &e);           /* the VAD confirms the restart */
  CHECK_EQ_INT(e.n, 3);
  CHECK_EQ_INT(e.type[0], KMK_EP_SPEECH_START);
  CHECK_EQ_INT(e.type[1], KMK_EP_SPEECH_PAUSE);
  CHECK_EQ_INT(e.type[2], KMK_EP_SPEECH_RESUME);
  CHECK_EQ_INT(e.frame[2], 50 + 57);
  /* strong-scored frames that never become speech: the end waits 5 frames, no more */
  int base = f;
  feed_scored(ep, 0.0f, 540, &f, &e);
  feed_scored(ep, 1.0f, 200, &f, &e);
  CHECK_EQ_INT(e.n, 5);
  CHECK_EQ_INT(e.type[4], KMK_EP_SPEECH_END);
  CHECK_EQ_INT(e.frame[4], base + 59); /* the 60th silent frame = 55 + 5 */
  kmk_endpoint_free(ep);

  kmk_endpoint_params_default(&p); /* classic: ends after exactly 1000 ms, strong or not */
  ep = kmk_endpoint_new(&p);
  evs c = {0};
  f = 0;
  feed(ep, 1, 500, &f, &c);
  feed_scored(ep, 1.0f, 1200, &f, &c);
  CHECK_EQ_INT(c.n, 2);
  CHECK_EQ_INT(c.type[1], KMK_EP_SPEECH_END);
  CHECK_EQ_INT(c.frame[1], 50 + 99);
  kmk_endpoint_free(ep);
}

int main(void) {
  RUN(test_defaults_unchanged);
  RUN(test_pause_and_resume);
  RUN(test_adaptive_learns_pauses);
  RUN(test_cut_corrects_itself);
  RUN(test_pause_not_after_end);
  RUN(test_presets);
  RUN(test_end_waits_for_strong_onset);
  return check_done();
}
