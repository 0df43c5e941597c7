/* stream.c - per-speaker input pipeline: Opus decode / soxr resample -> 10 ms frames -> VAD ->
 * endpointer -> caller's callback.
 *
 * Owns: its Opus decoder (created lazily on the first packet), its resampler (recreated when the
 * input format changes), the VAD, the endpointer and a < 10 ms sample remainder.
 * Thread: one owner thread per stream.
 */
#include "kameko/stream.h"

#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/opus.h"
#include "kameko/resample.h"

#define TAG "stream"
#define CHUNK_MS 100

struct kmk_speaker_stream {
  kmk_stream_cb cb;
  void *ud;
  kmk_vad *vad;
  kmk_endpoint *ep;
  kmk_opus_dec *dec;
  kmk_resampler *rs;
  int16_t rem[KMK_VAD_FRAME]; /* partial frame carried between calls */
  int rem_len;
  kmk_vad_result last;
  int in_callback;
};

/* The default for every stream (issue 8): the "spectral" detector + the balanced "turn"
 * endpointer; it beats "energy" + 1 s on frame F1, worst-condition F1, turn-end delay and turns
 * cut on every corpus seed (engine/audio/README.md). "classic" selects the old pair. */
void kmk_stream_params_default(kmk_stream_params *p) {
  memset(p, 0, sizeof *p);
  p->vad_name = "spectral";
  kmk_vad_params_default(&p->vad);
  kmk_endpoint_params_turn(&p->endpoint);
}

int kmk_stream_params_preset(kmk_stream_params *p, const char *name) {
  if (!p) return KMK_AUDIO_EINVAL;
  kmk_stream_params_default(p);
  int rc = kmk_endpoint_params_preset(&p->endpoint, name);
  p->vad_name = (!name || !*name || !strcmp(name, "classic")) ? "energy" : "spectral";
  return rc;
}

kmk_speaker_stream *kmk_speaker_stream_new(const kmk_stream_params *p, kmk_stream_cb on_event,
                                           void *ud) {
  kmk_stream_params def;
  if (!p) {
    kmk_stream_params_default(&def);
    p = &def;
  }
  kmk_speaker_stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cb = on_event;
  s->ud = ud;
  s->vad = kmk_vad_new(p->vad_name ? p->vad_name : "spectral", &p->vad);
  s->ep = kmk_endpoint_new(&p->endpoint);
  if (!s->vad || !s->ep) {
    KMK_ERR(TAG, "cannot create stream (vad %s, endpoint params %s)", s->vad ? "ok" : "failed",
            s->ep ? "ok" : "invalid");
    kmk_speaker_stream_free(s);
    return NULL;
  }
  return s;
}

void kmk_speaker_stream_free(kmk_speaker_stream *s) {
  if (!s) return;
  kmk_vad_free(s->vad);
  kmk_endpoint_free(s->ep);
  kmk_opus_dec_free(s->dec);
  kmk_resampler_free(s->rs);
  free(s);
}

static void deliver(kmk_speaker_stream *s, const kmk_endpoint_event *ev) {
  if (!s->cb) return;
  s->in_callback = 1;
  s->cb(s->ud, ev);
  s->in_callback = 0;
}

static int run_frame(kmk_speaker_stream *s, const int16_t *frame) {
  int rc = kmk_vad_process(s->vad, frame, &s->last);
  if (rc < 0) return rc;
  kmk_endpoint_event ev;
  rc = kmk_endpoint_process(s->ep, frame, &s->last, &ev);
  if (rc > 0) deliver(s, &ev);
  return rc < 0 ? rc : 0;
}

/* Feeds 16 kHz mono samples: completes the remainder, runs whole frames, keeps the rest. */
static int feed(kmk_speaker_stream *s, const int16_t *x, size_t n) {
  if (s->rem_len) {
    size_t k = (size_t)(KMK_VAD_FRAME - s->rem_len);
    if (k > n) k = n;
    memcpy(s->rem + s->rem_len, x, k * sizeof *x);
    s->rem_len += (int)k;
    x += k;
    n -= k;
    if (s->rem_len < KMK_VAD_FRAME) return 0;
    s->rem_len = 0;
    int rc = run_frame(s, s->rem);
    if (rc < 0) return rc;
  }
  while (n >= KMK_VAD_FRAME) {
    int rc = run_frame(s, x);
    if (rc < 0) return rc;
    x += KMK_VAD_FRAME;
    n -= KMK_VAD_FRAME;
  }
  memcpy(s->rem, x, n * sizeof *x);
  s->rem_len = (int)n;
  return 0;
}

static int ensure_decoder(kmk_speaker_stream *s) {
  if (s->dec) return 0;
  char err[160];
  s->dec = kmk_opus_dec_new(err, sizeof err);
  if (!s->dec) {
    KMK_ERR(TAG, "%s", err);
    return KMK_AUDIO_ECODEC;
  }
  return 0;
}

int kmk_speaker_stream_push_opus(kmk_speaker_stream *s, const uint8_t *pkt, size_t len) {
  if (!s) return KMK_AUDIO_EINVAL;
  int rc = ensure_decoder(s);
  if (rc < 0) return rc;
  int16_t pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  int n = kmk_opus_dec_decode(s->dec, pkt, len, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
  int bad = 0;
  if (n < 0) { /* corrupt packet: conceal so the timeline keeps its length */
    KMK_DEBUG(TAG, "%s; concealing", kmk_opus_dec_error(s->dec));
    bad = n;
    n = kmk_opus_dec_decode(s->dec, NULL, 0, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
    if (n < 0) return n;
  }
  rc = feed(s, pcm, (size_t)n);
  if (rc < 0) return rc;
  return bad ? bad : n;
}

int kmk_speaker_stream_push_opus_fec(kmk_speaker_stream *s, const uint8_t *next_pkt, size_t len) {
  if (!s || !next_pkt || !len) return KMK_AUDIO_EINVAL;
  int rc = ensure_decoder(s);
  if (rc < 0) return rc;
  int16_t pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  int n = kmk_opus_dec_decode_fec(s->dec, next_pkt, len, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
  if (n < 0) return n;
  rc = feed(s, pcm, (size_t)n);
  return rc < 0 ? rc : n;
}

static int ensure_resampler(kmk_speaker_stream *s, int rate, int channels) {
  if (rate < 8000 || rate > 192000 || channels < 1 || channels > 8) return KMK_AUDIO_EINVAL;
  if (s->rs && kmk_resampler_in_rate(s->rs) == rate && kmk_resampler_in_channels(s->rs) == channels)
    return 0;
  if (s->rs) { /* format changed: drain the old one first */
    const int16_t *o;
    long n = kmk_resampler_flush(s->rs, &o);
    if (n > 0) {
      int rc = feed(s, o, (size_t)n);
      if (rc < 0) return rc;
    }
    kmk_resampler_free(s->rs);
  }
  s->rs = kmk_resampler_new(rate, channels, KMK_AUDIO_RATE, 1);
  return s->rs ? 0 : KMK_AUDIO_ECODEC;
}

static int push_pcm(kmk_speaker_stream *s, const int16_t *i16, const float *f32, size_t frames,
                    int rate, int channels) {
  if (!s || (!i16 && !f32 && frames)) return KMK_AUDIO_EINVAL;
  int rc = ensure_resampler(s, rate, channels);
  if (rc < 0) return rc;
  size_t chunk = (size_t)rate * CHUNK_MS / 1000;
  for (size_t pos = 0; pos < frames; pos += chunk) {
    size_t n = frames - pos < chunk ? frames - pos : chunk;
    const int16_t *o;
    long k = i16 ? kmk_resampler_process_s16(s->rs, i16 + pos * (size_t)channels, n, &o)
                 : kmk_resampler_process_f32(s->rs, f32 + pos * (size_t)channels, n, &o);
    if (k < 0) return (int)k;
    rc = feed(s, o, (size_t)k);
    if (rc < 0) return rc;
  }
  return 0;
}

int kmk_speaker_stream_push_s16(kmk_speaker_stream *s, const int16_t *pcm, size_t frames, int rate,
                                int channels) {
  return push_pcm(s, pcm, NULL, frames, rate, channels);
}

int kmk_speaker_stream_push_f32(kmk_speaker_stream *s, const float *pcm, size_t frames, int rate,
                                int channels) {
  return push_pcm(s, NULL, pcm, frames, rate, channels);
}

int kmk_speaker_stream_finish(kmk_speaker_stream *s) {
  if (!s) return KMK_AUDIO_EINVAL;
  if (s->rs) {
    const int16_t *o;
    long n = kmk_resampler_flush(s->rs, &o);
    if (n < 0) return (int)n;
    int rc = feed(s, o, (size_t)n);
    if (rc < 0) return rc;
  }
  if (s->rem_len) {
    memset(s->rem + s->rem_len, 0, (size_t)(KMK_VAD_FRAME - s->rem_len) * sizeof s->rem[0]);
    s->rem_len = 0;
    int rc = run_frame(s, s->rem);
    if (rc < 0) return rc;
  }
  kmk_endpoint_event ev;
  if (kmk_endpoint_finish(s->ep, &ev) > 0) deliver(s, &ev);
  return 0;
}

int16_t *kmk_speaker_stream_take_pcm(kmk_speaker_stream *s) {
  if (!s || !s->in_callback) return NULL;
  return kmk_endpoint_take_pcm(s->ep);
}

uint64_t kmk_speaker_stream_position(const kmk_speaker_stream *s) {
  return kmk_endpoint_position(s->ep);
}

kmk_endpoint_state kmk_speaker_stream_state(const kmk_speaker_stream *s) {
  return kmk_endpoint_get_state(s->ep);
}

kmk_vad_result kmk_speaker_stream_last_vad(const kmk_speaker_stream *s) { return s->last; }
