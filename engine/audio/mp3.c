/* mp3.c - MP3 to mono int16 PCM through libmpg123 in feed mode (Edge-TTS sends MP3 frames).
 *
 * Owns one mpg123 handle per kmk_mp3. Any thread, one thread per instance; the library's global
 * init runs once (pthread_once).
 */
#include <mpg123.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/cloud.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int lib_ok;

static void load(void) { lib_ok = mpg123_init() == MPG123_OK; }

struct kmk_mp3 {
  mpg123_handle *mh;
  int channels;
  long rate;
};

kmk_mp3 *kmk_mp3_new(void) {
  pthread_once(&once, load);
  if (!lib_ok) return NULL;
  kmk_mp3 *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  int err = 0;
  m->mh = mpg123_new(NULL, &err);
  if (!m->mh) {
    free(m);
    return NULL;
  }
  mpg123_param(m->mh, MPG123_ADD_FLAGS, MPG123_QUIET, 0);
  mpg123_format_none(m->mh);
  const long *rates;
  size_t nr;
  mpg123_rates(&rates, &nr);
  for (size_t i = 0; i < nr; i++)
    mpg123_format(m->mh, rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_SIGNED_16);
  if (mpg123_open_feed(m->mh) != MPG123_OK) {
    mpg123_delete(m->mh);
    free(m);
    return NULL;
  }
  m->channels = 1;
  return m;
}

int kmk_mp3_feed(kmk_mp3 *m, const void *data, size_t len, kmk_tts_chunk_fn fn, void *ud) {
  if (!m) return KMK_NET_EDECODE;
  if (len && mpg123_feed(m->mh, data, len) != MPG123_OK) return KMK_NET_EDECODE;
  int16_t buf[4608];
  for (;;) {
    size_t done = 0;
    int rc = mpg123_read(m->mh, (unsigned char *)buf, sizeof buf, &done);
    if (rc == MPG123_NEW_FORMAT) {
      int enc;
      mpg123_getformat(m->mh, &m->rate, &m->channels, &enc);
      continue;
    }
    if (rc != MPG123_OK && rc != MPG123_NEED_MORE && rc != MPG123_DONE) return KMK_NET_EDECODE;
    size_t n = done / sizeof(int16_t);
    if (n && m->rate > 0) {
      if (m->channels == 2) {
        for (size_t i = 0; i < n / 2; i++) buf[i] = (int16_t)(((int)buf[2 * i] + buf[2 * i + 1]) / 2);
        n /= 2;
      }
      if (fn && fn(ud, buf, n, (int)m->rate)) return 1; /* the caller asked to stop */
    }
    if (rc != MPG123_OK) return 0;
  }
}

void kmk_mp3_free(kmk_mp3 *m) {
  if (!m) return;
  mpg123_delete(m->mh);
  free(m);
}
