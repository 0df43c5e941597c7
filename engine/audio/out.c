/* out.c - agent output chain: resample to 48 kHz stereo, cut 20 ms frames, Opus-encode into a
 * bounded drop-oldest queue; end-of-reply silence frames; barge-in clear.
 *
 * Owns: the encoder, the resampler for the current input rate, the partial frame and the frame
 * slots. Thread: one owner thread (the loop thread).
 */
#include "kameko/out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/resample.h"

#define TAG "out"
#define FRAME KMK_OPUS_ENC_FRAME
#define CH KMK_OPUS_ENC_CHANNELS

struct kmk_audio_out {
  kmk_opus_enc *enc;
  kmk_resampler *rs;
  int16_t partial[FRAME * CH];
  size_t partial_len; /* stereo frames in partial */
  kmk_out_frame *slots;
  size_t cap, head, count;
  uint64_t seq, dropped;
  kmk_out_frame popped; /* returned by pop, valid until the next call */
};

kmk_audio_out *kmk_audio_out_new(int bitrate, size_t max_frames, char *err, size_t errlen) {
  if (max_frames == 0) max_frames = 3000;
  if (max_frames > 180000) {
    if (err && errlen) snprintf(err, errlen, "max_frames %zu too large", max_frames);
    return NULL;
  }
  kmk_audio_out *o = calloc(1, sizeof *o);
  if (!o) goto nomem;
  o->slots = calloc(max_frames, sizeof *o->slots);
  if (!o->slots) goto nomem;
  o->cap = max_frames;
  o->enc = kmk_opus_enc_new(bitrate, err, errlen);
  if (!o->enc) {
    free(o->slots);
    free(o);
    return NULL;
  }
  return o;
nomem:
  if (o) free(o);
  if (err && errlen) snprintf(err, errlen, "out of memory for %zu frames", max_frames);
  return NULL;
}

void kmk_audio_out_free(kmk_audio_out *o) {
  if (!o) return;
  kmk_opus_enc_free(o->enc);
  kmk_resampler_free(o->rs);
  free(o->slots);
  free(o);
}

/* Next free slot at the tail; drops the oldest frame when full. */
static kmk_out_frame *tail_slot(kmk_audio_out *o) {
  if (o->count == o->cap) {
    o->head = (o->head + 1) % o->cap;
    o->count--;
    if (o->dropped++ == 0) KMK_WARN(TAG, "queue full (%zu frames): dropping oldest", o->cap);
  }
  kmk_out_frame *f = &o->slots[(o->head + o->count) % o->cap];
  f->seq = o->seq++;
  return f;
}

static int emit_partial(kmk_audio_out *o) {
  uint8_t pkt[KMK_OPUS_MAX_PACKET];
  int n = kmk_opus_enc_encode(o->enc, o->partial, pkt, sizeof pkt);
  if (n < 0) {
    KMK_ERR(TAG, "%s", kmk_opus_enc_error(o->enc));
    return n;
  }
  kmk_out_frame *f = tail_slot(o);
  memcpy(f->data, pkt, (size_t)n);
  f->len = n;
  f->silence = 0;
  memcpy(f->pcm, o->partial, sizeof f->pcm);
  o->count++;
  o->partial_len = 0;
  return 0;
}

/* Appends resampled 48 kHz stereo frames, emitting every full 20 ms frame. */
static int take(kmk_audio_out *o, const int16_t *x, size_t n) {
  while (n) {
    size_t k = FRAME - o->partial_len;
    if (k > n) k = n;
    memcpy(o->partial + o->partial_len * CH, x, k * CH * sizeof *x);
    o->partial_len += k;
    x += k * CH;
    n -= k;
    if (o->partial_len == FRAME) {
      int rc = emit_partial(o);
      if (rc < 0) return rc;
    }
  }
  return 0;
}

static int drain_resampler(kmk_audio_out *o) {
  if (!o->rs) return 0;
  const int16_t *out;
  long n = kmk_resampler_flush(o->rs, &out);
  if (n < 0) return (int)n;
  return take(o, out, (size_t)n);
}

int kmk_audio_out_push(kmk_audio_out *o, const int16_t *pcm, size_t frames, int rate) {
  if (!o || (!pcm && frames) || rate < 8000 || rate > 192000) return KMK_AUDIO_EINVAL;
  if (!o->rs || kmk_resampler_in_rate(o->rs) != rate) {
    int rc = drain_resampler(o);
    if (rc < 0) return rc;
    kmk_resampler_free(o->rs);
    o->rs = kmk_resampler_new(rate, 1, KMK_OPUS_ENC_RATE, CH);
    if (!o->rs) return KMK_AUDIO_ECODEC;
  }
  size_t chunk = (size_t)rate / 10; /* 100 ms pieces keep the resampler's scratch small */
  for (size_t pos = 0; pos < frames; pos += chunk) {
    size_t n = frames - pos < chunk ? frames - pos : chunk;
    const int16_t *out;
    long k = kmk_resampler_process_s16(o->rs, pcm + pos, n, &out);
    if (k < 0) return (int)k;
    int rc = take(o, out, (size_t)k);
    if (rc < 0) return rc;
  }
  return 0;
}

int kmk_audio_out_finish(kmk_audio_out *o) {
  if (!o) return KMK_AUDIO_EINVAL;
  int rc = drain_resampler(o);
  if (rc < 0) return rc;
  if (o->partial_len) {
    memset(o->partial + o->partial_len * CH, 0, (FRAME - o->partial_len) * CH * sizeof o->partial[0]);
    o->partial_len = FRAME;
    rc = emit_partial(o);
    if (rc < 0) return rc;
  }
  for (int i = 0; i < KMK_OUT_SILENCE_FRAMES; i++) {
    kmk_out_frame *f = tail_slot(o);
    f->data[0] = 0xF8;
    f->data[1] = 0xFF;
    f->data[2] = 0xFE;
    f->len = 3;
    f->silence = 1;
    memset(f->pcm, 0, sizeof f->pcm);
    o->count++;
  }
  return 0;
}

void kmk_audio_out_clear(kmk_audio_out *o) {
  if (!o) return;
  o->head = o->count = 0;
  o->partial_len = 0;
  kmk_resampler_reset(o->rs);
  kmk_opus_enc_reset(o->enc);
}

const kmk_out_frame *kmk_audio_out_pop(kmk_audio_out *o) {
  if (!o || !o->count) return NULL;
  o->popped = o->slots[o->head];
  o->head = (o->head + 1) % o->cap;
  o->count--;
  return &o->popped;
}

size_t kmk_audio_out_queued(const kmk_audio_out *o) { return o ? o->count : 0; }
size_t kmk_audio_out_space(const kmk_audio_out *o) { return o ? o->cap - o->count : 0; }
uint64_t kmk_audio_out_dropped(const kmk_audio_out *o) { return o ? o->dropped : 0; }
