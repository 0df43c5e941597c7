/* test_audio_stream.c - kmk_speaker_stream end to end: PCM at 48 kHz stereo in odd chunks, float
 * PCM, Opus packets with losses, and the real recording; events carry 16 kHz sample positions. */
#include <stdlib.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/opus.h"
#include "kameko/stream.h"

#define PI 3.14159265358979323846

#define MAXEV 16
typedef struct {
  kmk_speaker_stream *s;
  kmk_stream_event ev[MAXEV];
  int16_t *pcm[MAXEV];
  int n;
} sink;

static void on_event(void *ud, const kmk_stream_event *ev) {
  sink *k = ud;
  if (k->n >= MAXEV) return;
  k->ev[k->n] = *ev;
  k->pcm[k->n] = ev->type == KMK_EP_SPEECH_END ? kmk_speaker_stream_take_pcm(k->s) : NULL;
  if (ev->type == KMK_EP_SPEECH_END) CHECK(k->pcm[k->n] == ev->pcm);
  k->ev[k->n].pcm = k->pcm[k->n];
  k->n++;
}

static void sink_free(sink *k) {
  for (int i = 0; i < k->n; i++) free(k->pcm[i]);
}

/* 1 s silence, 1 s tone, 1.5 s silence at `rate` with `ch` channels, interleaved. */
static int16_t *layout(int rate, int ch, size_t *frames) {
  size_t n = (size_t)rate * 35 / 10;
  int16_t *x = calloc(n * (size_t)ch, sizeof *x);
  for (size_t i = (size_t)rate; i < (size_t)rate * 2; i++)
    for (int c = 0; c < ch; c++) x[i * (size_t)ch + (size_t)c] = (int16_t)(3000 * sin(2 * PI * 440 * (double)i / rate));
  *frames = n;
  return x;
}

/* These tests pin the pipeline (framing, resampling, Opus, sample positions) with a steady tone,
 * so they use the original design's detector + 1 s endpointer ("classic"): the default
 * "spectral" detector treats a steady tone as noise, and the turn endpointer adds pause events. */
static kmk_speaker_stream *classic_stream(void *ud) {
  kmk_stream_params p;
  CHECK_EQ_INT(kmk_stream_params_preset(&p, "classic"), 0);
  return kmk_speaker_stream_new(&p, on_event, ud);
}

static void check_one_utterance(const sink *k, double tol_samples) {
  CHECK_EQ_INT(k->n, 2);
  if (k->n != 2) return;
  CHECK_EQ_INT(k->ev[0].type, KMK_EP_SPEECH_START);
  CHECK_EQ_INT(k->ev[1].type, KMK_EP_SPEECH_END);
  CHECK_NEAR((double)k->ev[1].start_sample, 16000 - 4800, tol_samples);
  CHECK_NEAR((double)(k->ev[1].start_sample + k->ev[1].length), 32000 + 1600, tol_samples);
  CHECK(k->pcm[1] != NULL);
}

static void test_pcm_48k_stereo_chunks(void) {
  size_t frames;
  int16_t *x = layout(48000, 2, &frames);
  sink k = {0};
  k.s = classic_stream(&k);
  CHECK(k.s != NULL);
  size_t pos = 0, chunk = 7;
  while (pos < frames) {
    size_t n = chunk < frames - pos ? chunk : frames - pos;
    CHECK_EQ_INT(kmk_speaker_stream_push_s16(k.s, x + 2 * pos, n, 48000, 2), 0);
    pos += n;
    chunk = chunk * 5 % 1999 + 1;
  }
  CHECK_EQ_INT(kmk_speaker_stream_finish(k.s), 0);
  check_one_utterance(&k, 160);
  CHECK_NEAR((double)kmk_speaker_stream_position(k.s), 16000 * 3.5, 160);
  sink_free(&k);
  kmk_speaker_stream_free(k.s);
  free(x);
}

static void test_pcm_f32_22050_mono(void) {
  size_t frames;
  int16_t *x = layout(22050, 1, &frames);
  float *f = malloc(frames * sizeof *f);
  for (size_t i = 0; i < frames; i++) f[i] = x[i] / 32768.0f;
  sink k = {0};
  k.s = classic_stream(&k);
  CHECK_EQ_INT(kmk_speaker_stream_push_f32(k.s, f, frames, 22050, 1), 0);
  CHECK_EQ_INT(kmk_speaker_stream_finish(k.s), 0);
  check_one_utterance(&k, 160);
  CHECK_EQ_INT(kmk_speaker_stream_push_f32(k.s, f, 10, 1000, 1), KMK_AUDIO_EINVAL);
  sink_free(&k);
  kmk_speaker_stream_free(k.s);
  free(f);
  free(x);
}

static void test_opus_packets_with_loss(void) {
  size_t frames;
  int16_t *x = layout(48000, 2, &frames);
  char err[128];
  kmk_opus_enc *e = kmk_opus_enc_new(64000, err, sizeof err);
  sink k = {0};
  k.s = classic_stream(&k);
  int lost = 0;
  for (size_t f = 0, i = 0; f + 960 <= frames; f += 960, i++) {
    uint8_t pkt[KMK_OPUS_MAX_PACKET];
    int n = kmk_opus_enc_encode(e, x + 2 * f, pkt, sizeof pkt);
    CHECK(n > 0);
    if (i % 17 == 5) { /* lose some packets: PLC keeps the timeline */
      CHECK_EQ_INT(kmk_speaker_stream_push_opus(k.s, NULL, 0), 320);
      lost++;
    } else {
      CHECK_EQ_INT(kmk_speaker_stream_push_opus(k.s, pkt, (size_t)n), 320);
    }
  }
  CHECK(lost > 5);
  /* a loss recovered through the next packet's FEC keeps the timeline length too */
  {
    int16_t sil[1920] = {0};
    uint8_t a[KMK_OPUS_MAX_PACKET];
    int n = kmk_opus_enc_encode(e, sil, a, sizeof a);
    CHECK_EQ_INT(kmk_speaker_stream_push_opus_fec(k.s, a, (size_t)n), 320);
    CHECK_EQ_INT(kmk_speaker_stream_push_opus(k.s, a, (size_t)n), 320);
  }
  uint8_t junk[2] = {0xFF, 0xFF};
  CHECK(kmk_speaker_stream_push_opus(k.s, junk, 2) < 0); /* corrupt: concealed and reported */
  CHECK_EQ_INT(kmk_speaker_stream_finish(k.s), 0);
  check_one_utterance(&k, 400); /* codec delay ~6.5 ms plus PLC smear */
  CHECK_EQ_INT(kmk_speaker_stream_position(k.s), (frames / 960 + 3) * 320);
  sink_free(&k);
  kmk_speaker_stream_free(k.s);
  kmk_opus_enc_free(e);
  free(x);
}

static void test_real_recording_rate_change(void) {
  FILE *f = fopen("/usr/share/pocketsphinx/test/data/goforward.raw", "rb");
  if (!f) return;
  int16_t *x = malloc(100000 * sizeof *x);
  size_t n = fread(x, 2, 100000, f);
  fclose(f);
  kmk_stream_params p;
  kmk_stream_params_default(&p);
  p.endpoint.end_silence_ms = 500;
  sink k = {0};
  k.s = kmk_speaker_stream_new(&p, on_event, &k);
  /* first half native 16 kHz, then a silent 44.1 kHz stereo gap, then the rest again at 16k */
  CHECK_EQ_INT(kmk_speaker_stream_push_s16(k.s, x, n, 16000, 1), 0);
  int16_t *gap = calloc(44100 * 2, sizeof *gap);
  CHECK_EQ_INT(kmk_speaker_stream_push_s16(k.s, gap, 44100, 44100, 2), 0);
  CHECK_EQ_INT(kmk_speaker_stream_push_s16(k.s, x, n, 16000, 1), 0);
  CHECK_EQ_INT(kmk_speaker_stream_finish(k.s), 0);
  int ends = 0;
  for (int i = 0; i < k.n; i++) ends += k.ev[i].type == KMK_EP_SPEECH_END;
  CHECK(ends >= 2); /* the 1 s gap splits the two copies */
  CHECK_NEAR((double)kmk_speaker_stream_position(k.s), (double)(2 * n + 16000), 320);
  sink_free(&k);
  kmk_speaker_stream_free(k.s);
  free(gap);
  free(x);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  RUN(test_pcm_48k_stereo_chunks);
  RUN(test_pcm_f32_22050_mono);
  RUN(test_opus_packets_with_loss);
  RUN(test_real_recording_rate_change);
  return check_done();
}
