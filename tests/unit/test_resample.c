/* test_resample.c - soxr resampler: 48k stereo 1 kHz sine -> 16k mono keeps frequency, amplitude
 * and exact length ratio when streamed in odd chunks; pass-through path; upmix; flush. */
#include <stdlib.h>

#include "check.h"
#include "kameko/resample.h"

#define PI 3.14159265358979323846

static int zero_crossings(const int16_t *x, size_t n) {
  int z = 0;
  for (size_t i = 1; i < n; i++)
    if ((x[i - 1] < 0) != (x[i] < 0)) z++;
  return z;
}

static double rms(const int16_t *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return sqrt(s / (double)n);
}

static void test_48k_stereo_to_16k_mono(void) {
  const size_t in_frames = 48000 * 2; /* 2 s */
  float *in = malloc(in_frames * 2 * sizeof *in);
  for (size_t i = 0; i < in_frames; i++) {
    float v = (float)(0.5 * sin(2 * PI * 1000.0 * (double)i / 48000.0));
    in[2 * i] = v;
    in[2 * i + 1] = v;
  }
  kmk_resampler *r = kmk_resampler_new(48000, 2, 16000, 1);
  CHECK(r != NULL);
  int16_t *out = malloc(40000 * sizeof *out);
  size_t got = 0, pos = 0, chunk = 1;
  while (pos < in_frames) { /* odd, varying chunk sizes */
    size_t n = chunk < in_frames - pos ? chunk : in_frames - pos;
    const int16_t *o;
    long k = kmk_resampler_process_f32(r, in + 2 * pos, n, &o);
    CHECK(k >= 0);
    memcpy(out + got, o, (size_t)k * sizeof *o);
    got += (size_t)k;
    pos += n;
    chunk = chunk * 3 % 997 + 1;
  }
  const int16_t *o;
  long k = kmk_resampler_flush(r, &o);
  CHECK(k >= 0);
  memcpy(out + got, o, (size_t)k * sizeof *o);
  got += (size_t)k;
  CHECK_NEAR((double)got, 32000.0, 4);
  /* middle 1 s: 1000 Hz -> 2000 zero crossings; amplitude 0.5 -> rms 0.5/sqrt2 * 32768 */
  CHECK_NEAR(zero_crossings(out + 8000, 16000), 2000, 4);
  CHECK_NEAR(rms(out + 8000, 16000), 0.5 / sqrt(2.0) * 32768, 200);
  kmk_resampler_free(r);
  free(out);
  free(in);
}

static void test_same_rate_passthrough(void) {
  kmk_resampler *r = kmk_resampler_new(16000, 1, 16000, 1);
  int16_t in[480];
  for (int i = 0; i < 480; i++) in[i] = (int16_t)(i * 50 - 12000);
  const int16_t *o;
  CHECK_EQ_INT(kmk_resampler_process_s16(r, in, 480, &o), 480);
  int same = 1;
  for (int i = 0; i < 480; i++) same &= o[i] == in[i];
  CHECK(same);
  CHECK_EQ_INT(kmk_resampler_flush(r, &o), 0);
  kmk_resampler_free(r);
  /* stereo -> mono averages */
  r = kmk_resampler_new(8000, 2, 8000, 1);
  int16_t st[4] = {1000, 3000, -2000, 0};
  CHECK_EQ_INT(kmk_resampler_process_s16(r, st, 2, &o), 2);
  CHECK_EQ_INT(o[0], 2000);
  CHECK_EQ_INT(o[1], -1000);
  kmk_resampler_free(r);
}

static void test_mono_to_stereo_upsample(void) {
  kmk_resampler *r = kmk_resampler_new(22050, 1, 48000, 2);
  CHECK(r != NULL);
  CHECK_EQ_INT(kmk_resampler_out_channels(r), 2);
  int16_t in[22050];
  for (int i = 0; i < 22050; i++) in[i] = (int16_t)(8000 * sin(2 * PI * 440.0 * i / 22050.0));
  int16_t *out = malloc(2 * 50000 * sizeof *out);
  size_t got = 0;
  const int16_t *o;
  for (int p = 0; p < 22050; p += 1000) {
    long k = kmk_resampler_process_s16(r, in + p, p + 1000 <= 22050 ? 1000 : 22050 - p, &o);
    memcpy(out + 2 * got, o, (size_t)k * 2 * sizeof *o);
    got += (size_t)k;
  }
  long k = kmk_resampler_flush(r, &o);
  memcpy(out + 2 * got, o, (size_t)k * 2 * sizeof *o);
  got += (size_t)k;
  CHECK_NEAR((double)got, 48000.0, 3);
  int lr_same = 1;
  for (size_t i = 0; i < got; i++) lr_same &= out[2 * i] == out[2 * i + 1];
  CHECK(lr_same);
  /* 440 Hz over the middle 0.5 s: 440 crossings */
  int16_t *mono = malloc(24000 * sizeof *mono);
  for (int i = 0; i < 24000; i++) mono[i] = out[2 * (12000 + i)];
  CHECK_NEAR(zero_crossings(mono, 24000), 440, 3);
  free(mono);
  free(out);
  kmk_resampler_free(r);
  CHECK(kmk_resampler_new(0, 1, 16000, 1) == NULL);
  CHECK(kmk_resampler_new(16000, 1, 16000, 3) == NULL);
}

int main(void) {
  RUN(test_48k_stereo_to_16k_mono);
  RUN(test_same_rate_passthrough);
  RUN(test_mono_to_stereo_upsample);
  return check_done();
}
