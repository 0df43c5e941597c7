/* test_vad.c - the pluggable VAD interface and the "energy" detector. */
#include <stdlib.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/vad.h"

#define PI 3.14159265358979323846

static void fill_tone(int16_t *f, double amp) {
  for (int i = 0; i < KMK_VAD_FRAME; i++) f[i] = (int16_t)(amp * sin(2 * PI * 500 * i / 16000.0));
}

static void test_energy_decisions(void) {
  kmk_vad *v = kmk_vad_new("energy", NULL);
  CHECK(v != NULL);
  CHECK_STR(kmk_vad_name(v), "energy");
  int16_t f[KMK_VAD_FRAME], copy[KMK_VAD_FRAME];
  kmk_vad_result r;
  memset(f, 0, sizeof f);
  CHECK_EQ_INT(kmk_vad_process(v, f, &r), 0);
  CHECK_EQ_INT(r.is_speech, 0);
  CHECK_NEAR(r.level, 0, 1e-6);
  CHECK_NEAR(r.score, 0, 1e-6);
  /* constant 299 / 301: just under / over the default threshold of 300 */
  for (int i = 0; i < KMK_VAD_FRAME; i++) f[i] = (int16_t)(i & 1 ? 299 : -299);
  kmk_vad_process(v, f, &r);
  CHECK_EQ_INT(r.is_speech, 0);
  CHECK_NEAR(r.level, 299, 1e-3);
  for (int i = 0; i < KMK_VAD_FRAME; i++) f[i] = (int16_t)(i & 1 ? 301 : -301);
  kmk_vad_process(v, f, &r);
  CHECK_EQ_INT(r.is_speech, 1);
  CHECK(r.score > 0.5f && r.score < 0.51f);
  /* a tone: mean |x| of a sine = 2A/pi; the frame must not be modified */
  fill_tone(f, 3000);
  memcpy(copy, f, sizeof f);
  kmk_vad_process(v, f, &r);
  CHECK_EQ_INT(r.is_speech, 1);
  CHECK_NEAR(r.level, 2 * 3000 / PI, 40);
  CHECK(r.score > 0.8f && r.score < 1.0f);
  CHECK(memcmp(copy, f, sizeof f) == 0);
  /* -32768 everywhere must not overflow */
  for (int i = 0; i < KMK_VAD_FRAME; i++) f[i] = -32768;
  kmk_vad_process(v, f, &r);
  CHECK_NEAR(r.level, 32768, 1e-3);
  kmk_vad_reset(v);
  kmk_vad_free(v);
}

static void test_threshold_param(void) {
  kmk_vad_params p;
  kmk_vad_params_default(&p);
  CHECK_NEAR(p.threshold, 300, 1e-6);
  p.threshold = 2000;
  kmk_vad *v = kmk_vad_new("energy", &p);
  int16_t f[KMK_VAD_FRAME];
  kmk_vad_result r;
  fill_tone(f, 3000); /* level ~1910 */
  kmk_vad_process(v, f, &r);
  CHECK_EQ_INT(r.is_speech, 0);
  kmk_vad_free(v);
  CHECK(kmk_vad_new("no-such-detector", NULL) == NULL);
  CHECK_EQ_INT(kmk_vad_process(NULL, f, &r), KMK_AUDIO_EINVAL);
}

/* A custom detector plugged in through the registry: speech when the first sample is odd. */
static int odd_resets;
static void *odd_create(const kmk_vad_params *p) { (void)p; return malloc(1); }
static int odd_process(void *st, const int16_t *frame, kmk_vad_result *out) {
  (void)st;
  out->is_speech = frame[0] & 1;
  out->score = (float)out->is_speech;
  out->level = frame[0];
  return 0;
}
static void odd_reset(void *st) { (void)st; odd_resets++; }
static void odd_destroy(void *st) { free(st); }
static const kmk_vad_ops odd_ops = {"odd", odd_create, odd_process, odd_reset, odd_destroy};

static void test_register_custom(void) {
  CHECK_EQ_INT(kmk_vad_register(&odd_ops), 0);
  CHECK_EQ_INT(kmk_vad_register(&odd_ops), KMK_AUDIO_EINVAL); /* duplicate name */
  kmk_vad *v = kmk_vad_new("odd", NULL);
  CHECK(v != NULL);
  int16_t f[KMK_VAD_FRAME] = {7};
  kmk_vad_result r;
  kmk_vad_process(v, f, &r);
  CHECK_EQ_INT(r.is_speech, 1);
  kmk_vad_reset(v);
  CHECK_EQ_INT(odd_resets, 1);
  kmk_vad_free(v);
}

int main(void) {
  RUN(test_energy_decisions);
  RUN(test_threshold_param);
  RUN(test_register_custom);
  return check_done();
}
