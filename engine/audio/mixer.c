/* mixer.c - saturating 16 kHz mono timeline mixer with a hard size cap, WAV output.
 *
 * Owns: the timeline buffer (grows by doubling up to the cap). Thread: one owner thread.
 */
#include "kameko/mixer.h"

#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/wav.h"

#define TAG "mixer"

struct kmk_mixer {
  int rate;
  uint64_t max;
  int16_t *buf;
  uint64_t len, cap;
  int warned;
};

kmk_mixer *kmk_mixer_new(int rate, uint64_t max_samples) {
  if (rate < 0 || rate > 192000) return NULL;
  kmk_mixer *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->rate = rate ? rate : 16000;
  m->max = max_samples ? max_samples : KMK_MIXER_DEFAULT_MAX;
  return m;
}

void kmk_mixer_free(kmk_mixer *m) {
  if (!m) return;
  free(m->buf);
  free(m);
}

static int reserve(kmk_mixer *m, uint64_t need) {
  if (need <= m->cap) return 0;
  uint64_t cap = m->cap ? m->cap : 16000;
  while (cap < need) cap *= 2;
  if (cap > m->max) cap = m->max;
  int16_t *b = realloc(m->buf, (size_t)cap * sizeof *b);
  if (!b) return KMK_AUDIO_ENOMEM;
  memset(b + m->cap, 0, (size_t)(cap - m->cap) * sizeof *b);
  m->buf = b;
  m->cap = cap;
  return 0;
}

int kmk_mixer_add(kmk_mixer *m, uint64_t at, const int16_t *pcm, size_t n) {
  if (!m || (!pcm && n)) return KMK_AUDIO_EINVAL;
  int rc = 0;
  if (at >= m->max) {
    n = 0;
    rc = KMK_AUDIO_EFULL;
  } else if (n > m->max - at) {
    n = (size_t)(m->max - at);
    rc = KMK_AUDIO_EFULL;
  }
  if (rc && !m->warned) {
    KMK_WARN(TAG, "timeline cap of %llu samples reached: audio cut", (unsigned long long)m->max);
    m->warned = 1;
  }
  if (!n) return rc;
  if (reserve(m, at + n) < 0) return KMK_AUDIO_ENOMEM;
  int16_t *d = m->buf + at;
  for (size_t i = 0; i < n; i++) {
    int v = d[i] + pcm[i];
    d[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
  }
  if (at + n > m->len) m->len = at + n;
  return rc;
}

uint64_t kmk_mixer_length(const kmk_mixer *m) { return m ? m->len : 0; }
const int16_t *kmk_mixer_data(const kmk_mixer *m) { return m ? m->buf : NULL; }

int kmk_mixer_write_wav(const kmk_mixer *m, const char *path) {
  if (!m || !path) return KMK_AUDIO_EINVAL;
  static const int16_t none[1] = {0};
  return kmk_wav_write_s16(path, m->buf ? m->buf : none, (size_t)m->len, m->rate, 1);
}
