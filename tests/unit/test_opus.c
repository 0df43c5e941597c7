/* test_opus.c - Opus round trip: 48 kHz stereo encode -> 16 kHz mono decode keeps the signal
 * (correlation/SNR after aligning for codec delay) for a sine and real speech; PLC and FEC give a
 * frame; bad input is reported as a negative error. */
#include <stdlib.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/opus.h"
#include "kameko/resample.h"

#define PI 3.14159265358979323846

/* Best normalised correlation of dec against ref over lags 0..maxlag (dec lags ref); *snr_db gets
 * the SNR at that lag after least-squares gain. */
static double best_corr(const int16_t *ref, const int16_t *dec, size_t n, int maxlag, int *lag_out,
                        double *snr_db) {
  double best = -2;
  int bl = 0;
  for (int lag = 0; lag <= maxlag; lag++) {
    double xy = 0, xx = 0, yy = 0;
    for (size_t i = 0; i + (size_t)lag < n; i++) {
      double x = ref[i], y = dec[i + (size_t)lag];
      xy += x * y;
      xx += x * x;
      yy += y * y;
    }
    double c = xy / sqrt(xx * yy + 1e-9);
    if (c > best) {
      best = c;
      bl = lag;
    }
  }
  double xy = 0, xx = 0, err = 0;
  for (size_t i = 0; i + (size_t)bl < n; i++) {
    xy += (double)ref[i] * dec[i + (size_t)bl];
    xx += (double)ref[i] * ref[i];
  }
  double g = xy / (xx + 1e-9);
  for (size_t i = 0; i + (size_t)bl < n; i++) {
    double e = dec[i + (size_t)bl] - g * ref[i];
    err += e * e;
  }
  *snr_db = 10 * log10((g * g * xx) / (err + 1e-9));
  *lag_out = bl;
  return best;
}

/* Encodes 48k stereo (frames multiple of 960) and decodes at 16k mono into out (frames/3). */
static void round_trip(const int16_t *st48, size_t frames, int16_t *out) {
  char err[128];
  kmk_opus_enc *e = kmk_opus_enc_new(64000, err, sizeof err);
  kmk_opus_dec *d = kmk_opus_dec_new(err, sizeof err);
  CHECK(e && d);
  size_t got = 0;
  for (size_t f = 0; f + 960 <= frames; f += 960) {
    uint8_t pkt[KMK_OPUS_MAX_PACKET];
    int n = kmk_opus_enc_encode(e, st48 + 2 * f, pkt, sizeof pkt);
    CHECK(n > 0 && n < 400);
    int k = kmk_opus_dec_decode(d, pkt, (size_t)n, out + got, KMK_OPUS_DEC_MAX_SAMPLES);
    CHECK_EQ_INT(k, 320);
    if (k > 0) got += (size_t)k;
  }
  CHECK_EQ_INT(got, frames / 3);
  kmk_opus_enc_free(e);
  kmk_opus_dec_free(d);
}

static void test_sine_round_trip(void) {
  const size_t frames = 48000;
  int16_t *st = malloc(frames * 2 * sizeof *st), *ref = malloc(16000 * sizeof *ref);
  int16_t *dec = malloc(16000 * sizeof *dec);
  for (size_t i = 0; i < frames; i++) {
    double t = (double)i / 48000;
    int16_t v = (int16_t)(6000 * sin(2 * PI * 440 * t) + 3000 * sin(2 * PI * 1250 * t));
    st[2 * i] = st[2 * i + 1] = v;
  }
  for (size_t i = 0; i < 16000; i++) {
    double t = (double)i / 16000;
    ref[i] = (int16_t)(6000 * sin(2 * PI * 440 * t) + 3000 * sin(2 * PI * 1250 * t));
  }
  round_trip(st, frames, dec);
  int lag;
  double snr;
  /* skip the first 100 ms (encoder start-up) */
  double c = best_corr(ref + 1600, dec + 1600, 14000, 200, &lag, &snr);
  fprintf(stderr, "sine: corr %.4f lag %d snr %.1f dB\n", c, lag, snr);
  CHECK(c > 0.95);
  CHECK(snr > 12);
  CHECK(lag > 50 && lag < 200);
  free(st);
  free(ref);
  free(dec);
}

static void test_speech_round_trip(void) {
  FILE *f = fopen("/usr/share/pocketsphinx/test/data/goforward.raw", "rb");
  if (!f) {
    fprintf(stderr, "skip: goforward.raw missing\n");
    return;
  }
  int16_t *ref = malloc(80000 * sizeof *ref);
  size_t n = fread(ref, 2, 80000, f);
  fclose(f);
  n -= n % 320;
  kmk_resampler *r = kmk_resampler_new(16000, 1, 48000, 2);
  int16_t *st = calloc(n * 3 * 2 + 1920, sizeof *st);
  const int16_t *o;
  long k = kmk_resampler_process_s16(r, ref, n, &o);
  memcpy(st, o, (size_t)k * 2 * sizeof *o);
  long k2 = kmk_resampler_flush(r, &o);
  memcpy(st + 2 * k, o, (size_t)k2 * 2 * sizeof *o);
  CHECK_NEAR((double)(k + k2), (double)(n * 3), 3);
  kmk_resampler_free(r);
  int16_t *dec = malloc(n * sizeof *dec);
  round_trip(st, n * 3, dec);
  int lag;
  double snr;
  double c = best_corr(ref, dec, n, 400, &lag, &snr);
  fprintf(stderr, "speech: corr %.4f lag %d snr %.1f dB\n", c, lag, snr);
  CHECK(c > 0.75); /* perceptual codec: waveform match is loose, a broken path gives ~0 */
  CHECK(snr > 2);
  CHECK(lag > 0 && lag < 250); /* codec delay: a few ms at 16 kHz */
  free(ref);
  free(st);
  free(dec);
}

static void test_plc_fec_and_errors(void) {
  char err[128];
  kmk_opus_enc *e = kmk_opus_enc_new(0, err, sizeof err);
  kmk_opus_dec *d = kmk_opus_dec_new(err, sizeof err);
  CHECK(kmk_opus_enc_lookahead(e) > 0);
  int16_t st[1920], pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  uint8_t pkt[5][KMK_OPUS_MAX_PACKET];
  int len[5];
  for (int p = 0; p < 5; p++) {
    for (int i = 0; i < 960; i++)
      st[2 * i] = st[2 * i + 1] = (int16_t)(5000 * sin(2 * PI * 300 * (p * 960 + i) / 48000.0));
    len[p] = kmk_opus_enc_encode(e, st, pkt[p], KMK_OPUS_MAX_PACKET);
    CHECK(len[p] > 0);
  }
  CHECK_EQ_INT(kmk_opus_dec_decode(d, pkt[0], (size_t)len[0], pcm, KMK_OPUS_DEC_MAX_SAMPLES), 320);
  CHECK_EQ_INT(kmk_opus_dec_decode(d, pkt[1], (size_t)len[1], pcm, KMK_OPUS_DEC_MAX_SAMPLES), 320);
  /* packet 2 lost: PLC gives one 20 ms frame that continues the tone (not silence) */
  CHECK_EQ_INT(kmk_opus_dec_decode(d, NULL, 0, pcm, KMK_OPUS_DEC_MAX_SAMPLES), 320);
  double e2 = 0;
  for (int i = 0; i < 320; i++) e2 += (double)pcm[i] * pcm[i];
  CHECK(sqrt(e2 / 320) > 100);
  /* packet 3 lost: recover it from packet 4's FEC (or PLC inside libopus), then decode 4 */
  CHECK_EQ_INT(kmk_opus_dec_decode_fec(d, pkt[4], (size_t)len[4], pcm, KMK_OPUS_DEC_MAX_SAMPLES), 320);
  CHECK_EQ_INT(kmk_opus_dec_decode(d, pkt[4], (size_t)len[4], pcm, KMK_OPUS_DEC_MAX_SAMPLES), 320);
  /* bad arguments / corrupt packet */
  CHECK_EQ_INT(kmk_opus_dec_decode(d, pkt[0], (size_t)len[0], pcm, 10), KMK_AUDIO_EINVAL);
  uint8_t junk[3] = {0xFF, 0xFF, 0xFF}; /* code 3 with impossible frame count */
  int rc = kmk_opus_dec_decode(d, junk, 3, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
  CHECK(rc < 0);
  CHECK(strlen(kmk_opus_dec_error(d)) > 0);
  CHECK(kmk_opus_enc_new(1000, err, sizeof err) == NULL);
  CHECK(strstr(err, "bitrate") != NULL);
  kmk_opus_enc_free(e);
  kmk_opus_dec_free(d);
}

int main(void) {
  RUN(test_sine_round_trip);
  RUN(test_speech_round_trip);
  RUN(test_plc_fec_and_errors);
  return check_done();
}
