/* mls_codec.c - owns the TLS presentation language codec used by every MLS structure:
 * big-endian integers, MLS variable-length integers (RFC 9420 section 2.1.2) and vectors, plus the
 * owned byte string helper. Pure functions; any thread.
 *
 * Reader rule: every read is bounds-checked before touching memory, and a failed read consumes
 * nothing. Vector lengths are validated against the bytes that remain and KMK_MLS_MAX_VEC.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls.h"

const char *kmk_mls_strerror(int err) {
  switch (err) {
    case KMK_MLS_OK: return "ok";
    case KMK_MLS_ERR_DECODE: return "malformed input";
    case KMK_MLS_ERR_NOMEM: return "out of memory";
    case KMK_MLS_ERR_CRYPTO: return "crypto failure";
    case KMK_MLS_ERR_INVALID: return "protocol rule violated";
    case KMK_MLS_ERR_VERIFY: return "verification failed";
    case KMK_MLS_ERR_UNSUPPORTED: return "unsupported";
    case KMK_MLS_ERR_ARG: return "bad argument";
    default: return "unknown error";
  }
}

/* ---------- owned bytes ---------- */

int kmk_mls_bytes_set(kmk_mls_bytes *b, const void *data, size_t len) {
  uint8_t *p = NULL;
  if (len) {
    p = malloc(len);
    if (!p) return KMK_MLS_ERR_NOMEM;
    memcpy(p, data, len);
  }
  kmk_mls_bytes_free(b);
  b->data = p;
  b->len = len;
  return KMK_MLS_OK;
}

void kmk_mls_bytes_free(kmk_mls_bytes *b) {
  if (!b) return;
  if (b->data) {
    OPENSSL_cleanse(b->data, b->len);
    free(b->data);
  }
  b->data = NULL;
  b->len = 0;
}

int kmk_mls_bytes_eq(const kmk_mls_bytes *a, const kmk_mls_bytes *b) {
  if (a->len != b->len) return 0;
  return a->len == 0 || memcmp(a->data, b->data, a->len) == 0;
}

/* ---------- writer ---------- */

void kmk_mls_w_init(kmk_mls_w *w) { memset(w, 0, sizeof *w); }

void kmk_mls_w_free(kmk_mls_w *w) {
  if (w->buf) {
    OPENSSL_cleanse(w->buf, w->cap);
    free(w->buf);
  }
  memset(w, 0, sizeof *w);
}

static int w_reserve(kmk_mls_w *w, size_t n) {
  if (w->err) return w->err;
  if (n > KMK_MLS_MAX_VEC * 4 || w->len + n > KMK_MLS_MAX_VEC * 4) return w->err = KMK_MLS_ERR_ARG;
  if (w->len + n <= w->cap) return 0;
  size_t cap = w->cap ? w->cap : 64;
  while (cap < w->len + n) cap *= 2;
  uint8_t *nb = malloc(cap);
  if (!nb) return w->err = KMK_MLS_ERR_NOMEM;
  if (w->buf) {
    memcpy(nb, w->buf, w->len);
    OPENSSL_cleanse(w->buf, w->cap); /* old copies may hold secrets */
    free(w->buf);
  }
  w->buf = nb;
  w->cap = cap;
  return 0;
}

int kmk_mls_w_raw(kmk_mls_w *w, const void *p, size_t n) {
  int rc = w_reserve(w, n);
  if (rc) return rc;
  if (n) memcpy(w->buf + w->len, p, n);
  w->len += n;
  return 0;
}

int kmk_mls_w_u8(kmk_mls_w *w, uint8_t v) { return kmk_mls_w_raw(w, &v, 1); }

int kmk_mls_w_u16(kmk_mls_w *w, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  return kmk_mls_w_raw(w, b, 2);
}

int kmk_mls_w_u32(kmk_mls_w *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  return kmk_mls_w_raw(w, b, 4);
}

int kmk_mls_w_u64(kmk_mls_w *w, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
  return kmk_mls_w_raw(w, b, 8);
}

static size_t varint_encode(uint64_t v, uint8_t out[4]) {
  if (v < 0x40) {
    out[0] = (uint8_t)v;
    return 1;
  }
  if (v < 0x4000) {
    out[0] = (uint8_t)(0x40 | (v >> 8));
    out[1] = (uint8_t)v;
    return 2;
  }
  out[0] = (uint8_t)(0x80 | (v >> 24));
  out[1] = (uint8_t)(v >> 16);
  out[2] = (uint8_t)(v >> 8);
  out[3] = (uint8_t)v;
  return 4;
}

int kmk_mls_w_varint(kmk_mls_w *w, uint64_t v) {
  if (w->err) return w->err;
  if (v >= (1u << 30)) return w->err = KMK_MLS_ERR_ARG;
  uint8_t b[4];
  return kmk_mls_w_raw(w, b, varint_encode(v, b));
}

int kmk_mls_w_vec(kmk_mls_w *w, const void *p, size_t n) {
  int rc = kmk_mls_w_varint(w, n);
  return rc ? rc : kmk_mls_w_raw(w, p, n);
}

size_t kmk_mls_w_begin(kmk_mls_w *w) { return w->len; }

int kmk_mls_w_end(kmk_mls_w *w, size_t mark) {
  if (w->err) return w->err;
  if (mark > w->len) return w->err = KMK_MLS_ERR_ARG;
  size_t body = w->len - mark;
  if (body >= (1u << 30)) return w->err = KMK_MLS_ERR_ARG;
  uint8_t hdr[4];
  size_t h = varint_encode(body, hdr);
  int rc = w_reserve(w, h);
  if (rc) return rc;
  memmove(w->buf + mark + h, w->buf + mark, body);
  memcpy(w->buf + mark, hdr, h);
  w->len += h;
  return 0;
}

int kmk_mls_w_finish(kmk_mls_w *w, kmk_mls_bytes *out) {
  int rc = w->err;
  if (rc) {
    kmk_mls_w_free(w);
    return rc;
  }
  rc = kmk_mls_bytes_set(out, w->buf, w->len);
  kmk_mls_w_free(w);
  return rc;
}

/* ---------- reader ---------- */

void kmk_mls_r_init(kmk_mls_r *r, const void *p, size_t len) {
  r->p = p;
  r->len = p ? len : 0;
  r->off = 0;
}

size_t kmk_mls_r_left(const kmk_mls_r *r) { return r->len - r->off; }

int kmk_mls_r_raw(kmk_mls_r *r, size_t n, const uint8_t **p) {
  if (n > kmk_mls_r_left(r)) return KMK_MLS_ERR_DECODE;
  if (p) *p = r->p + r->off;
  r->off += n;
  return 0;
}

int kmk_mls_r_u8(kmk_mls_r *r, uint8_t *v) {
  const uint8_t *p;
  if (kmk_mls_r_raw(r, 1, &p)) return KMK_MLS_ERR_DECODE;
  *v = p[0];
  return 0;
}

int kmk_mls_r_u16(kmk_mls_r *r, uint16_t *v) {
  const uint8_t *p;
  if (kmk_mls_r_raw(r, 2, &p)) return KMK_MLS_ERR_DECODE;
  *v = (uint16_t)((p[0] << 8) | p[1]);
  return 0;
}

int kmk_mls_r_u32(kmk_mls_r *r, uint32_t *v) {
  const uint8_t *p;
  if (kmk_mls_r_raw(r, 4, &p)) return KMK_MLS_ERR_DECODE;
  *v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
  return 0;
}

int kmk_mls_r_u64(kmk_mls_r *r, uint64_t *v) {
  const uint8_t *p;
  if (kmk_mls_r_raw(r, 8, &p)) return KMK_MLS_ERR_DECODE;
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
  *v = x;
  return 0;
}

int kmk_mls_r_varint(kmk_mls_r *r, uint64_t *v) {
  if (kmk_mls_r_left(r) < 1) return KMK_MLS_ERR_DECODE;
  const uint8_t *p = r->p + r->off;
  unsigned prefix = p[0] >> 6;
  size_t n = prefix == 0 ? 1 : prefix == 1 ? 2 : prefix == 2 ? 4 : 0;
  if (n == 0 || kmk_mls_r_left(r) < n) return KMK_MLS_ERR_DECODE;
  uint64_t x = p[0] & 0x3f;
  for (size_t i = 1; i < n; i++) x = (x << 8) | p[i];
  /* Minimal encoding only (RFC 9420 section 2.1.2). */
  if ((n == 2 && x < 0x40) || (n == 4 && x < 0x4000)) return KMK_MLS_ERR_DECODE;
  r->off += n;
  *v = x;
  return 0;
}

int kmk_mls_r_vec(kmk_mls_r *r, kmk_mls_r *sub) {
  size_t save = r->off;
  uint64_t n;
  if (kmk_mls_r_varint(r, &n)) return KMK_MLS_ERR_DECODE;
  if (n > KMK_MLS_MAX_VEC || n > kmk_mls_r_left(r)) {
    r->off = save;
    return KMK_MLS_ERR_DECODE;
  }
  kmk_mls_r_init(sub, r->p + r->off, (size_t)n);
  r->off += (size_t)n;
  return 0;
}

int kmk_mls_r_vec_copy(kmk_mls_r *r, kmk_mls_bytes *out) {
  size_t save = r->off;
  kmk_mls_r sub;
  if (kmk_mls_r_vec(r, &sub)) return KMK_MLS_ERR_DECODE;
  int rc = kmk_mls_bytes_set(out, sub.p, sub.len);
  if (rc) r->off = save;
  return rc;
}

int kmk_mls_r_vec_fixed(kmk_mls_r *r, uint8_t *out, size_t n) {
  size_t save = r->off;
  kmk_mls_r sub;
  if (kmk_mls_r_vec(r, &sub)) return KMK_MLS_ERR_DECODE;
  if (sub.len != n) {
    r->off = save;
    return KMK_MLS_ERR_DECODE;
  }
  if (n) memcpy(out, sub.p, n);
  return 0;
}

int kmk_mls_r_done(const kmk_mls_r *r) { return r->off == r->len ? 0 : KMK_MLS_ERR_DECODE; }
