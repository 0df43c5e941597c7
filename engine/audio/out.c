/* out.c - agent output chain: resample to 48 kHz stereo, cut 20 ms PCM frames into a bounded
 * drop-oldest queue; Opus-encode one frame per pop (one pacer tick); end-of-reply silence frames;
 * barge-in clear.
 *
 * push() does only the cheap part (soxr + copy into slots), so a long TTS chunk never holds the
 * loop for a whole encode; the encoder runs in pop(), ~20 ms of audio per call. The encoder is one
 * per chain and sees the frames in the order they are sent, so its state (prediction, FEC) is
 * continuous across the frames of a reply.
 *
 * Owns: the encoder, the resampler for the current input rate, the partial frame and the PCM
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

/* A queued frame before encoding: 48 kHz stereo PCM (zeros for silence frames). */
typedef struct {
  int16_t pcm[FRAME * CH];
  uint64_t seq;
  int silence;
} pcm_slot;

struct kmk_audio_out {
  kmk_opus_enc *enc;
  kmk_resampler *rs;
  int16_t partial[FRAME * CH];
  size_t partial_len; /* stereo frames in partial */
  pcm_slot *slots;
  size_t cap, head, count;
  uint64_t seq, dropped, encoded, enc_errors;
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

/* Next free slot at the tail (already counted as queued); drops the oldest frame when full. */
static pcm_slot *tail_slot(kmk_audio_out *o, int silence) {
  if (o->count == o->cap) {
    o->head = (o->head + 1) % o->cap;
    o->count--;
    if (o->dropped++ == 0) KMK_WARN(TAG, "queue full (%zu frames): dropping oldest", o->cap);
  }
  pcm_slot *s = &o->slots[(o->head + o->count) % o->cap];
  s->seq = o->seq++;
  s->silence = silence;
  o->count++;
  return s;
}

static void emit_partial(kmk_audio_out *o) {
  memcpy(tail_slot(o, 0)->pcm, o->partial, sizeof o->partial);
  o->partial_len = 0;
}

/* Appends resampled 48 kHz stereo frames, queueing every full 20 ms frame. */
static void take(kmk_audio_out *o, const int16_t *x, size_t n) {
  while (n) {
    size_t k = FRAME - o->partial_len;
    if (k > n) k = n;
    memcpy(o->partial + o->partial_len * CH, x, k * CH * sizeof *x);
    o->partial_len += k;
    x += k * CH;
    n -= k;
    if (o->partial_len == FRAME) emit_partial(o);
  }
}

static int drain_resampler(kmk_audio_out *o) {
  if (!o->rs) return 0;
  const int16_t *out;
  long n = kmk_resampler_flush(o->rs, &out);
  if (n < 0) return (int)n;
  take(o, out, (size_t)n);
  return 0;
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
    take(o, out, (size_t)k);
  }
  return 0;
}

int kmk_audio_out_finish(kmk_audio_out *o) {
  if (!o) return KMK_AUDIO_EINVAL;
  int rc = drain_resampler(o);
  if (rc < 0) return rc;
  if (o->partial_len) {
    memset(o->partial + o->partial_len * CH, 0, (FRAME - o->partial_len) * CH * sizeof o->partial[0]);
    emit_partial(o);
  }
  for (int i = 0; i < KMK_OUT_SILENCE_FRAMES; i++) {
    pcm_slot *s = tail_slot(o, 1);
    memset(s->pcm, 0, sizeof s->pcm);
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

/* Encodes the head slot into o->popped. Silence frames are the fixed F8 FF FE packet and do not
 * touch the encoder. A (never expected) encoder failure drops that frame: logged once, counted in
 * `dropped`, and the next frame is tried. */
const kmk_out_frame *kmk_audio_out_pop(kmk_audio_out *o) {
  if (!o) return NULL;
  while (o->count) {
    const pcm_slot *s = &o->slots[o->head];
    o->head = (o->head + 1) % o->cap;
    o->count--;
    kmk_out_frame *f = &o->popped;
    f->seq = s->seq;
    f->silence = s->silence;
    memcpy(f->pcm, s->pcm, sizeof f->pcm);
    if (s->silence) {
      f->data[0] = 0xF8;
      f->data[1] = 0xFF;
      f->data[2] = 0xFE;
      f->len = 3;
      return f;
    }
    int n = kmk_opus_enc_encode(o->enc, f->pcm, f->data, (int)sizeof f->data);
    if (n >= 0) {
      f->len = n;
      o->encoded++;
      return f;
    }
    o->dropped++;
    if (o->enc_errors++ == 0) KMK_ERR(TAG, "encode: %s (frame dropped)", kmk_opus_enc_error(o->enc));
  }
  return NULL;
}

size_t kmk_audio_out_queued(const kmk_audio_out *o) { return o ? o->count : 0; }
size_t kmk_audio_out_space(const kmk_audio_out *o) { return o ? o->cap - o->count : 0; }
uint64_t kmk_audio_out_dropped(const kmk_audio_out *o) { return o ? o->dropped : 0; }
uint64_t kmk_audio_out_encoded(const kmk_audio_out *o) { return o ? o->encoded : 0; }
