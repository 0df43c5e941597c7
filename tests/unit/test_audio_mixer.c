/* test_audio_mixer.c - timeline mixer: offsets, saturation, growth, hard cap, WAV output. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/mixer.h"
#include "kameko/wav.h"

static void test_mix_and_saturate(void) {
  kmk_mixer *m = kmk_mixer_new(0, 0);
  int16_t a[100], b[100];
  for (int i = 0; i < 100; i++) {
    a[i] = 1000;
    b[i] = (int16_t)(i < 50 ? 32000 : -32000);
  }
  CHECK_EQ_INT(kmk_mixer_add(m, 50000, a, 100), 0); /* grows past the initial 1 s */
  CHECK_EQ_INT(kmk_mixer_length(m), 50100);
  CHECK_EQ_INT(kmk_mixer_add(m, 50050, b, 100), 0);
  const int16_t *d = kmk_mixer_data(m);
  CHECK_EQ_INT(d[0], 0);
  CHECK_EQ_INT(d[49999], 0);
  CHECK_EQ_INT(d[50000], 1000);
  CHECK_EQ_INT(d[50050], 32767);  /* 1000 + 32000 saturates */
  CHECK_EQ_INT(d[50100], -32000); /* b alone */
  CHECK_EQ_INT(kmk_mixer_length(m), 50150);
  for (int i = 0; i < 100; i++) b[i] = -32000;
  kmk_mixer_add(m, 50100, b, 10);
  CHECK_EQ_INT(kmk_mixer_data(m)[50100], -32768);
  kmk_mixer_free(m);
}

static void test_cap(void) {
  kmk_mixer *m = kmk_mixer_new(16000, 1000);
  int16_t a[300];
  for (int i = 0; i < 300; i++) a[i] = 5;
  CHECK_EQ_INT(kmk_mixer_add(m, 800, a, 300), KMK_AUDIO_EFULL); /* 200 fit */
  CHECK_EQ_INT(kmk_mixer_length(m), 1000);
  CHECK_EQ_INT(kmk_mixer_data(m)[999], 5);
  CHECK_EQ_INT(kmk_mixer_add(m, 5000, a, 10), KMK_AUDIO_EFULL);
  CHECK_EQ_INT(kmk_mixer_length(m), 1000);
  kmk_mixer_free(m);
}

static void test_write_wav(void) {
  kmk_mixer *m = kmk_mixer_new(16000, 0);
  int16_t a[160];
  for (int i = 0; i < 160; i++) a[i] = (int16_t)(i * 100);
  kmk_mixer_add(m, 16000, a, 160);
  char path[] = "/tmp/kmk_test_mixer_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  CHECK_EQ_INT(kmk_mixer_write_wav(m, path), 0);
  kmk_wav w;
  char err[200];
  CHECK_EQ_INT(kmk_wav_read(path, &w, err, sizeof err), 0);
  CHECK_EQ_INT(w.frames, 16160);
  CHECK_EQ_INT(w.rate, 16000);
  CHECK_NEAR(w.samples[16000 + 100] * 32768.0f, 10000, 0.5);
  kmk_wav_free(&w);
  unlink(path);
  kmk_mixer_free(m);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  RUN(test_mix_and_saturate);
  RUN(test_cap);
  RUN(test_write_wav);
  return check_done();
}
