/* resample.c - streaming resampler: channel map -> soxr (float) -> int16 with clipping.
 *
 * Owns: the soxr handle and two scratch buffers per resampler (they grow to the largest chunk
 * seen; callers feed bounded chunks, so memory stays bounded). Thread: one owner per resampler.
 */
#include "kameko/resample.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/log.h"

#define TAG "resample"

struct kmk_resampler {
  int in_rate, in_ch, out_rate, out_ch;
  soxr_t soxr;      /* NULL when in_rate == out_rate */
  double ratio;     /* out_rate / in_rate */
  float *mapped;    /* channel-mapped float input, out_ch interleaved */
  size_t mapped_cap;
  float *fout;      /* soxr float output */
  size_t fout_cap;
  int16_t *out;     /* int16 output handed to the caller */
  size_t out_cap;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 1024;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * elem);
  if (!q) return KMK_AUDIO_ENOMEM;
  *p = q;
  *cap = n;
  return 0;
}

kmk_resampler *kmk_resampler_new(int in_rate, int in_channels, int out_rate, int out_channels) {
  if (in_rate < 1000 || in_rate > 384000 || out_rate < 1000 || out_rate > 384000 ||
      in_channels < 1 || in_channels > 8 || out_channels < 1 || out_channels > 2) {
    KMK_ERR(TAG, "bad resampler config %d Hz x%d -> %d Hz x%d", in_rate, in_channels, out_rate,
            out_channels);
    return NULL;
  }
  kmk_resampler *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->in_rate = in_rate;
  r->in_ch = in_channels;
  r->out_rate = out_rate;
  r->out_ch = out_channels;
  r->ratio = (double)out_rate / in_rate;
  if (in_rate != out_rate) {
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_MQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* never spawn OpenMP threads per stream */
    r->soxr = soxr_create(in_rate, out_rate, (unsigned)out_channels, &e, &io, &q, &rt);
    if (!r->soxr || e) {
      KMK_ERR(TAG, "soxr_create %d -> %d: %s", in_rate, out_rate, e ? e : "failed");
      free(r);
      return NULL;
    }
  }
  return r;
}

void kmk_resampler_free(kmk_resampler *r) {
  if (!r) return;
  if (r->soxr) soxr_delete(r->soxr);
  free(r->mapped);
  free(r->fout);
  free(r->out);
  free(r);
}

static int16_t to_s16(float f) {
  float v = f * 32768.0f;
  if (!(v == v)) return 0; /* NaN */
  if (v >= 32767.0f) return 32767;
  if (v <= -32768.0f) return -32768;
  return (int16_t)lrintf(v);
}

/* Channel-maps n input frames (float or int16) into r->mapped. */
static int map_channels(kmk_resampler *r, const float *inf, const int16_t *ins, size_t n) {
  if (grow((void **)&r->mapped, &r->mapped_cap, n * (size_t)r->out_ch + 1, sizeof(float)) < 0)
    return KMK_AUDIO_ENOMEM;
  const int ic = r->in_ch, oc = r->out_ch;
  const float k = 1.0f / 32768.0f;
  float *m = r->mapped;
#define IN(i) (inf ? inf[i] : ins[i] * k)
  if (oc == 1) {
    const float inv = 1.0f / (float)ic;
    for (size_t f = 0; f < n; f++) {
      float acc = 0;
      for (int c = 0; c < ic; c++) acc += IN(f * ic + c);
      m[f] = ic == 1 ? acc : acc * inv;
    }
  } else if (ic == 1) {
    for (size_t f = 0; f < n; f++) m[2 * f] = m[2 * f + 1] = IN(f);
  } else {
    for (size_t f = 0; f < n; f++) {
      m[2 * f] = IN(f * ic);
      m[2 * f + 1] = IN(f * ic + 1);
    }
  }
#undef IN
  return 0;
}

/* Runs soxr on `in` (NULL = flush) and converts everything produced to r->out. */
static long run(kmk_resampler *r, const float *in, size_t in_frames, const int16_t **out) {
  const size_t oc = (size_t)r->out_ch;
  size_t produced = 0;
  if (!r->soxr) {
    if (grow((void **)&r->out, &r->out_cap, in_frames * oc + 1, sizeof(int16_t)) < 0)
      return KMK_AUDIO_ENOMEM;
    for (size_t i = 0; i < in_frames * oc; i++) r->out[i] = to_s16(in[i]);
    *out = r->out;
    return (long)in_frames;
  }
  size_t consumed = 0;
  for (int guard = 0; guard < 100000; guard++) {
    size_t room = (size_t)ceil((double)(in_frames - consumed) * r->ratio) + 256;
    if (grow((void **)&r->fout, &r->fout_cap, room * oc, sizeof(float)) < 0)
      return KMK_AUDIO_ENOMEM;
    size_t idone = 0, odone = 0;
    soxr_error_t e = soxr_process(r->soxr, in ? in + consumed * oc : NULL,
                                  in ? in_frames - consumed : 0, &idone, r->fout, room, &odone);
    if (e) {
      KMK_ERR(TAG, "soxr_process: %s", e);
      return KMK_AUDIO_ECODEC;
    }
    if (grow((void **)&r->out, &r->out_cap, (produced + odone) * oc + 1, sizeof(int16_t)) < 0)
      return KMK_AUDIO_ENOMEM;
    for (size_t i = 0; i < odone * oc; i++) r->out[produced * oc + i] = to_s16(r->fout[i]);
    produced += odone;
    consumed += idone;
    if (in ? (consumed >= in_frames && odone < room) : odone == 0) break;
  }
  *out = r->out;
  return (long)produced;
}

long kmk_resampler_process_f32(kmk_resampler *r, const float *in, size_t in_frames,
                               const int16_t **out) {
  if (!r || !out || (!in && in_frames)) return KMK_AUDIO_EINVAL;
  *out = NULL;
  if (map_channels(r, in, NULL, in_frames) < 0) return KMK_AUDIO_ENOMEM;
  return run(r, r->mapped, in_frames, out);
}

long kmk_resampler_process_s16(kmk_resampler *r, const int16_t *in, size_t in_frames,
                               const int16_t **out) {
  if (!r || !out || (!in && in_frames)) return KMK_AUDIO_EINVAL;
  *out = NULL;
  if (map_channels(r, NULL, in, in_frames) < 0) return KMK_AUDIO_ENOMEM;
  return run(r, r->mapped, in_frames, out);
}

long kmk_resampler_flush(kmk_resampler *r, const int16_t **out) {
  if (!r || !out) return KMK_AUDIO_EINVAL;
  *out = NULL;
  if (!r->soxr) {
    if (grow((void **)&r->out, &r->out_cap, 1, sizeof(int16_t)) < 0) return KMK_AUDIO_ENOMEM;
    *out = r->out;
    return 0;
  }
  long n = run(r, NULL, 0, out);
  soxr_clear(r->soxr);
  return n;
}

void kmk_resampler_reset(kmk_resampler *r) {
  if (r && r->soxr) soxr_clear(r->soxr);
}

int kmk_resampler_in_rate(const kmk_resampler *r) { return r->in_rate; }
int kmk_resampler_in_channels(const kmk_resampler *r) { return r->in_ch; }
int kmk_resampler_out_rate(const kmk_resampler *r) { return r->out_rate; }
int kmk_resampler_out_channels(const kmk_resampler *r) { return r->out_ch; }
