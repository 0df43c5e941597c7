/* ring.c - int16 sample ring buffer (drop-oldest overflow) and kmk_audio_strerror.
 *
 * Owns: the sample buffer of each kmk_ring. Thread: any, but one owner per ring (no locking).
 */
#include "kameko/ring.h"

#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"

const char *kmk_audio_strerror(int code) {
  switch (code) {
    case KMK_AUDIO_OK: return "ok";
    case KMK_AUDIO_EINVAL: return "invalid argument";
    case KMK_AUDIO_ENOMEM: return "out of memory or size cap reached";
    case KMK_AUDIO_EIO: return "i/o error";
    case KMK_AUDIO_EFORMAT: return "malformed input";
    case KMK_AUDIO_EUNSUPPORTED: return "unsupported format";
    case KMK_AUDIO_ECODEC: return "codec failure";
    case KMK_AUDIO_EFULL: return "buffer full";
    default: return "unknown error";
  }
}

int kmk_ring_init(kmk_ring *r, size_t capacity) {
  memset(r, 0, sizeof *r);
  if (capacity == 0) return KMK_AUDIO_EINVAL;
  r->buf = malloc(capacity * sizeof *r->buf);
  if (!r->buf) return KMK_AUDIO_ENOMEM;
  r->cap = capacity;
  return 0;
}

void kmk_ring_free(kmk_ring *r) {
  free(r->buf);
  memset(r, 0, sizeof *r);
}

size_t kmk_ring_write(kmk_ring *r, const int16_t *src, size_t n) {
  size_t dropped = 0;
  r->written += n;
  if (n >= r->cap) { /* only the newest cap samples survive */
    dropped = r->len + (n - r->cap);
    src += n - r->cap;
    n = r->cap;
    r->head = 0;
    r->len = 0;
  } else if (r->len + n > r->cap) {
    dropped = r->len + n - r->cap;
    r->head = (r->head + dropped) % r->cap;
    r->len -= dropped;
  }
  size_t tail = (r->head + r->len) % r->cap;
  size_t first = r->cap - tail < n ? r->cap - tail : n;
  memcpy(r->buf + tail, src, first * sizeof *src);
  memcpy(r->buf, src + first, (n - first) * sizeof *src);
  r->len += n;
  r->dropped += dropped;
  return dropped;
}

static void copy_out(const kmk_ring *r, size_t from, int16_t *dst, size_t n) {
  size_t first = r->cap - from < n ? r->cap - from : n;
  memcpy(dst, r->buf + from, first * sizeof *dst);
  memcpy(dst + first, r->buf, (n - first) * sizeof *dst);
}

size_t kmk_ring_read(kmk_ring *r, int16_t *dst, size_t n) {
  if (n > r->len) n = r->len;
  if (dst && n) copy_out(r, r->head, dst, n);
  if (r->cap) r->head = (r->head + n) % r->cap;
  r->len -= n;
  return n;
}

size_t kmk_ring_peek_last(const kmk_ring *r, int16_t *dst, size_t n) {
  if (n > r->len) n = r->len;
  if (n) copy_out(r, (r->head + r->len - n) % r->cap, dst, n);
  return n;
}

size_t kmk_ring_size(const kmk_ring *r) { return r->len; }
size_t kmk_ring_capacity(const kmk_ring *r) { return r->cap; }
uint64_t kmk_ring_dropped(const kmk_ring *r) { return r->dropped; }

void kmk_ring_clear(kmk_ring *r) {
  r->head = r->len = 0;
  r->dropped = r->written = 0;
}
