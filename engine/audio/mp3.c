/* mp3.c - MP3 to mono int16 PCM through libmpg123 in feed mode (Edge-TTS sends MP3 frames).
 *
 * Owns one mpg123 handle per kmk_mp3. Any thread, one thread per instance.
 * Linking: with KMK_HAVE_MPG123 defined (pkg-config libmpg123 wired into the build) we call
 * libmpg123 directly; otherwise, when <mpg123.h> is available, the library is loaded at run time
 * with dlopen("libmpg123.so.0") so the build needs no new link flag; without either,
 * kmk_mp3_new() returns NULL and Edge-TTS reports KMK_NET_EDECODE.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/cloud.h"

#if defined(KMK_HAVE_MPG123) || __has_include(<mpg123.h>)
#include <mpg123.h>
#ifndef KMK_HAVE_MPG123
#include <dlfcn.h>
#endif

static struct {
  int ok;
  int (*init)(void);
  mpg123_handle *(*new_)(const char *, int *);
  void (*del)(mpg123_handle *);
  int (*param)(mpg123_handle *, enum mpg123_parms, long, double);
  int (*format_none)(mpg123_handle *);
  int (*format)(mpg123_handle *, long, int, int);
  void (*rates)(const long **, size_t *);
  int (*open_feed)(mpg123_handle *);
  int (*feed)(mpg123_handle *, const unsigned char *, size_t);
  int (*read)(mpg123_handle *, void *, size_t, size_t *);
  int (*getformat)(mpg123_handle *, long *, int *, int *);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
#ifdef KMK_HAVE_MPG123
  api.init = mpg123_init, api.new_ = mpg123_new, api.del = mpg123_delete;
  api.param = mpg123_param, api.format_none = mpg123_format_none, api.format = mpg123_format;
  api.rates = mpg123_rates, api.open_feed = mpg123_open_feed, api.feed = mpg123_feed;
  api.read = (int (*)(mpg123_handle *, void *, size_t, size_t *))mpg123_read;
  api.getformat = mpg123_getformat;
#else
  void *h = dlopen("libmpg123.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
#define SYM(field, name) *(void **)(&api.field) = dlsym(h, name)
  SYM(init, "mpg123_init");
  SYM(new_, "mpg123_new");
  SYM(del, "mpg123_delete");
  SYM(param, "mpg123_param");
  SYM(format_none, "mpg123_format_none");
  SYM(format, "mpg123_format");
  SYM(rates, "mpg123_rates");
  SYM(open_feed, "mpg123_open_feed");
  SYM(feed, "mpg123_feed");
  SYM(read, "mpg123_read");
  SYM(getformat, "mpg123_getformat");
#undef SYM
  if (!api.init || !api.new_ || !api.del || !api.param || !api.format_none || !api.format ||
      !api.rates || !api.open_feed || !api.feed || !api.read || !api.getformat)
    return;
#endif
  api.init();
  api.ok = 1;
}

struct kmk_mp3 {
  mpg123_handle *mh;
  int channels;
  long rate;
};

kmk_mp3 *kmk_mp3_new(void) {
  pthread_once(&once, load);
  if (!api.ok) return NULL;
  kmk_mp3 *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  int err = 0;
  m->mh = api.new_(NULL, &err);
  if (!m->mh) {
    free(m);
    return NULL;
  }
  api.param(m->mh, MPG123_ADD_FLAGS, MPG123_QUIET, 0);
  api.format_none(m->mh);
  const long *rates;
  size_t nr;
  api.rates(&rates, &nr);
  for (size_t i = 0; i < nr; i++) api.format(m->mh, rates[i], MPG123_MONO | MPG123_STEREO, MPG123_ENC_SIGNED_16);
  if (api.open_feed(m->mh) != MPG123_OK) {
    api.del(m->mh);
    free(m);
    return NULL;
  }
  m->channels = 1;
  return m;
}

int kmk_mp3_feed(kmk_mp3 *m, const void *data, size_t len, kmk_tts_chunk_fn fn, void *ud) {
  if (!m) return KMK_NET_EDECODE;
  if (len && api.feed(m->mh, data, len) != MPG123_OK) return KMK_NET_EDECODE;
  int16_t buf[4608];
  for (;;) {
    size_t done = 0;
    int rc = api.read(m->mh, buf, sizeof buf, &done);
    if (rc == MPG123_NEW_FORMAT) {
      int enc;
      api.getformat(m->mh, &m->rate, &m->channels, &enc);
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
  api.del(m->mh);
  free(m);
}

#else /* no libmpg123 */

kmk_mp3 *kmk_mp3_new(void) { return NULL; }
int kmk_mp3_feed(kmk_mp3 *m, const void *d, size_t n, kmk_tts_chunk_fn fn, void *ud) {
  return KMK_NET_EDECODE;
}
void kmk_mp3_free(kmk_mp3 *m) {}

#endif
