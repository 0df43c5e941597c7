/* test_vad_spectral.c - the "spectral" detector on synthetic signals with known answers:
 * silence, stationary noise and hum are not speech once the floor has adapted; a harmonic
 * "voice" in noise is; keyboard-like clicks are not; a voice 18 dB under the speaker's learnt
 * level does not start speech; the frame is never modified; reset forgets; real speech
 * (goforward.raw) is found. Deterministic (fixed LCG seeds). */
#include <stdlib.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/vad.h"

#define PI 3.14159265358979323846
#define F KMK_VAD_FRAME

static unsigned lcg = 12345;
static double noise1(void) { /* uniform -1..1 */
  lcg = lcg * 1103515245u + 12345u;
  return ((lcg >> 8) & 0xFFFF) / 32768.0 - 1.0;
}

/* A crude voiced sound: 150 Hz pulse-like harmonics (1..20) with a formant-ish 1/k roll-off. */
static double voice(size_t n, double f0) {
  double t = (double)n / 16000, s = 0;
  for (int k = 1; k <= 20; k++) s += sin(2 * PI * f0 * k * t) / k;
  return s;
}

static int16_t clip16(double v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }

/* Runs nframes of generator output; returns the count of speech decisions in [from, to). */
typedef double (*gen_fn)(size_t n);
static int run(kmk_vad *v, size_t *pos, int nframes, gen_fn g, int from, int to) {
  int speech = 0;
  for (int f = 0; f < nframes; f++) {
    int16_t fr[F];
    for (int i = 0; i < F; i++) fr[i] = clip16(g(*pos + (size_t)i));
    kmk_vad_result r;
    CHECK_EQ_INT(kmk_vad_process(v, fr, &r), 0);
    if (f >= from && f < to) speech += r.is_speech;
    *pos += F;
  }
  return speech;
}

static double g_silence(size_t n) { (void)n; return 0; }
static double g_white(size_t n) { (void)n; return 800 * noise1(); }
static double g_hum(size_t n) {
  double t = (double)n / 16000, s = 0;
  for (int h = 1; h <= 10; h++) s += sin(2 * PI * 50 * h * t + h) / h;
  return 1500 * s + 20 * noise1();
}
static double g_voice_in_noise(size_t n) { return 1500 * voice(n, 150) + 800 * noise1(); }
static double g_loud_voice(size_t n) { return 3000 * voice(n, 140) + 20 * noise1(); }
static double g_quiet_voice(size_t n) { return 3000 / 8.0 * voice(n, 210) + 20 * noise1(); }
static size_t click_period = 2400; /* a click every 150 ms */
static double g_clicks(size_t n) {
  size_t k = n % click_period;
  double env = k < 64 ? exp(-(double)k / 24.0) : 0;
  return 12000 * env * sin(2 * PI * 3000 * (double)k / 16000) + 20 * noise1();
}

static void test_registered_and_const_frame(void) {
  kmk_vad *v = kmk_vad_new("spectral", NULL);
  CHECK(v != NULL);
  CHECK_STR(kmk_vad_name(v), "spectral");
  int16_t fr[F], copy[F];
  for (int i = 0; i < F; i++) fr[i] = (int16_t)(3000 * sin(i * 0.3));
  memcpy(copy, fr, sizeof fr);
  kmk_vad_result r;
  for (int k = 0; k < 50; k++) CHECK_EQ_INT(kmk_vad_process(v, fr, &r), 0);
  CHECK(memcmp(fr, copy, sizeof fr) == 0);
  CHECK(r.score >= 0 && r.score <= 1);
  CHECK_EQ_INT(kmk_vad_process(v, NULL, &r), KMK_AUDIO_EINVAL);
  kmk_vad_free(v);
}

static void test_silence_noise_hum_are_not_speech(void) {
  gen_fn gens[] = {g_silence, g_white, g_hum};
  for (int i = 0; i < 3; i++) {
    kmk_vad *v = kmk_vad_new("spectral", NULL);
    size_t pos = 0;
    int sp = run(v, &pos, 300, gens[i], 30, 300); /* after 300 ms of adaptation */
    CHECK_EQ_INT(sp, 0);
    kmk_vad_free(v);
  }
}

static void test_zeroed_params_are_safe(void) {
  kmk_vad_params zero = {0, 0};
  kmk_vad *v = kmk_vad_new("spectral", &zero);
  size_t pos = 0;
  CHECK_EQ_INT(run(v, &pos, 300, g_white, 30, 300), 0); /* no lock-up on noise */
  CHECK(run(v, &pos, 100, g_voice_in_noise, 5, 100) >= 90);
  kmk_vad_free(v);
  kmk_vad_params low = {1.0f, 1}; /* a threshold below 5 dB is clamped */
  v = kmk_vad_new("spectral", &low);
  pos = 0;
  CHECK_EQ_INT(run(v, &pos, 300, g_white, 30, 300), 0);
  kmk_vad_free(v);
}

static void test_voice_in_noise_is_speech(void) {
  kmk_vad *v = kmk_vad_new("spectral", NULL);
  size_t pos = 0;
  CHECK_EQ_INT(run(v, &pos, 100, g_white, 20, 100), 0);      /* 1 s of noise: learnt */
  int sp = run(v, &pos, 100, g_voice_in_noise, 5, 100);      /* 1 s of voice over it */
  CHECK(sp >= 90);
  int after = run(v, &pos, 100, g_white, 20, 100);            /* noise again: released */
  CHECK_EQ_INT(after, 0);
  kmk_vad_free(v);
}

static void test_clicks_are_not_speech(void) {
  kmk_vad *v = kmk_vad_new("spectral", NULL);
  size_t pos = 0;
  run(v, &pos, 50, g_silence, 0, 0);
  int sp = run(v, &pos, 300, g_clicks, 0, 300); /* 3 s of typing */
  CHECK(sp <= 6);
  kmk_vad_free(v);
}

static void test_distant_voice_does_not_start(void) {
  kmk_vad *v = kmk_vad_new("spectral", NULL);
  size_t pos = 0;
  run(v, &pos, 50, g_silence, 0, 0);
  CHECK(run(v, &pos, 150, g_loud_voice, 10, 150) >= 135); /* the speaker: level learnt */
  run(v, &pos, 100, g_silence, 0, 0);
  int sp = run(v, &pos, 200, g_quiet_voice, 0, 200); /* 18 dB under: not this speaker */
  CHECK_EQ_INT(sp, 0);
  /* after reset, the same quiet voice is the only voice: it is speech */
  kmk_vad_reset(v);
  pos = 0;
  run(v, &pos, 50, g_silence, 0, 0);
  CHECK(run(v, &pos, 150, g_quiet_voice, 10, 150) >= 135);
  kmk_vad_free(v);
}

static void test_real_recording(void) {
  FILE *fp = fopen("/usr/share/pocketsphinx/test/data/goforward.raw", "rb");
  if (!fp) {
    fprintf(stderr, "skip: goforward.raw not installed\n");
    return;
  }
  int16_t fr[F];
  kmk_vad *v = kmk_vad_new("spectral", NULL);
  int n = 0, sp = 0;
  while (fread(fr, 2, F, fp) == F) {
    kmk_vad_result r;
    kmk_vad_process(v, fr, &r);
    sp += r.is_speech;
    n++;
  }
  fclose(fp);
  /* "go forward ten meters": ~2.8 s of a 2.8 s file is not all speech, but most of it */
  CHECK(n > 250);
  CHECK(sp > n / 3 && sp < n);
  kmk_vad_free(v);
}

int main(void) {
  RUN(test_registered_and_const_frame);
  RUN(test_silence_noise_hum_are_not_speech);
  RUN(test_zeroed_params_are_safe);
  RUN(test_voice_in_noise_is_speech);
  RUN(test_clicks_are_not_speech);
  RUN(test_distant_voice_does_not_start);
  RUN(test_real_recording);
  return check_done();
}
