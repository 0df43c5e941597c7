/* dave_media.c - owns DAVE's media-frame layer: the per-sender hash ratchet, Opus frame
 * encryption (sender) and decryption with replay / missing-nonce windows, generation wrap-around
 * and old-key expiry (receiver), the frame trailer syntax, and the displayable voice privacy code.
 *
 * Frame: body (ciphertext, plus any unencrypted ranges) | 8-byte truncated AES-128-GCM tag |
 * ULEB128 truncated nonce | ULEB128 (offset, size) unencrypted ranges | u8 supplemental size
 * (tag .. marker inclusive) | 0xFA 0xFA. GCM nonce = 8 zero bytes || u32 little-endian nonce;
 * key generation = nonce >> 24 (wrapped by the receiver). AAD = the unencrypted range bytes.
 *
 * Threading: structs belong to one thread at a time; no globals. Secrets wiped on replace/wipe.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/dave.h"
#include "kameko/mls.h"

/* mls_crypto.c: GCM with a truncated tag. */
int kmk_mls_aead_seal_tag(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
                          uint8_t *tag, size_t tag_len);
int kmk_mls_aead_open_tag(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                          size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                          size_t tag_len, uint8_t *pt);

static const uint8_t SILENCE[3] = {0xF8, 0xFF, 0xFE};
static const char EXPORT_LABEL[] = "Discord Secure Frames v0";

const char *kmk_dave_strerror(int err) {
  switch (err) {
    case KMK_DAVE_OK: return "ok";
    case KMK_DAVE_ERR_DECODE: return "malformed encrypted frame";
    case KMK_DAVE_ERR_CRYPTO: return "crypto failure";
    case KMK_DAVE_ERR_VERIFY: return "frame did not authenticate";
    case KMK_DAVE_ERR_ARG: return "bad argument";
    case KMK_DAVE_ERR_REPLAY: return "replayed or too old nonce";
    case KMK_DAVE_ERR_NOT_ENCRYPTED: return "frame is not encrypted";
    case KMK_DAVE_ERR_NO_KEY: return "no key for this generation";
    default: return "unknown error";
  }
}

int kmk_dave_sender_base_secret(const uint8_t exporter_secret[32], uint64_t user_id,
                                uint8_t out[KMK_DAVE_BASE_LEN]) {
  uint8_t ctx[8];
  for (int i = 0; i < 8; i++) ctx[i] = (uint8_t)(user_id >> (8 * i)); /* little-endian */
  int rc = kmk_mls_export(exporter_secret, (const uint8_t *)EXPORT_LABEL, sizeof EXPORT_LABEL - 1,
                          ctx, sizeof ctx, out, KMK_DAVE_BASE_LEN);
  return rc ? KMK_DAVE_ERR_CRYPTO : 0;
}

/* ---------- ULEB128 ---------- */

size_t kmk_dave_uleb128_write(uint64_t v, uint8_t out[10]) {
  size_t n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
  } while (v);
  return n;
}

size_t kmk_dave_uleb128_read(const uint8_t *p, size_t n, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < n && i < 10; i++) {
    uint64_t b = p[i] & 0x7f;
    if (i == 9 && (p[i] & 0xfe)) return 0; /* would overflow 64 bits */
    x |= b << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = x;
      return i + 1;
    }
  }
  return 0;
}

/* ---------- hash ratchet ---------- */

int kmk_dave_ratchet_init(kmk_dave_ratchet *r, const uint8_t *base, size_t base_len) {
  if (!base || base_len == 0 || base_len > sizeof r->secret) return KMK_DAVE_ERR_ARG;
  kmk_dave_ratchet_wipe(r);
  memcpy(r->secret, base, base_len);
  r->secret_len = base_len;
  r->next_gen = 0;
  r->valid = 1;
  return 0;
}

void kmk_dave_ratchet_wipe(kmk_dave_ratchet *r) { OPENSSL_cleanse(r, sizeof *r); }

static kmk_dave_key_slot *cache_find(kmk_dave_ratchet *r, uint32_t g) {
  for (int i = 0; i < KMK_DAVE_KEY_CACHE; i++)
    if (r->cache[i].used && r->cache[i].generation == g) return &r->cache[i];
  return NULL;
}

static kmk_dave_key_slot *cache_victim(kmk_dave_ratchet *r) {
  kmk_dave_key_slot *v = &r->cache[0];
  for (int i = 0; i < KMK_DAVE_KEY_CACHE; i++) {
    if (!r->cache[i].used) return &r->cache[i];
    if (r->cache[i].generation < v->generation) v = &r->cache[i];
  }
  return v;
}

int kmk_dave_ratchet_get(kmk_dave_ratchet *r, uint32_t generation, uint8_t key[KMK_DAVE_KEY_LEN]) {
  if (!r->valid) return KMK_DAVE_ERR_NO_KEY;
  kmk_dave_key_slot *s = cache_find(r, generation);
  if (s) {
    memcpy(key, s->key, KMK_DAVE_KEY_LEN);
    return 0;
  }
  if (generation < r->next_gen || generation - r->next_gen > KMK_DAVE_MAX_GENERATION_GAP)
    return KMK_DAVE_ERR_NO_KEY;
  while (r->next_gen <= generation) {
    s = cache_victim(r);
    OPENSSL_cleanse(s, sizeof *s);
    if (kmk_mls_derive_tree_secret(r->secret, r->secret_len, "key", r->next_gen, s->key,
                                   KMK_DAVE_KEY_LEN) ||
        kmk_mls_derive_tree_secret(r->secret, r->secret_len, "secret", r->next_gen, r->secret,
                                   32)) {
      kmk_dave_ratchet_wipe(r);
      return KMK_DAVE_ERR_CRYPTO;
    }
    s->used = 1;
    s->generation = r->next_gen;
    r->secret_len = 32;
    r->next_gen++;
  }
  memcpy(key, s->key, KMK_DAVE_KEY_LEN);
  return 0;
}

void kmk_dave_ratchet_forget_below(kmk_dave_ratchet *r, uint32_t generation) {
  for (int i = 0; i < KMK_DAVE_KEY_CACHE; i++)
    if (r->cache[i].used && r->cache[i].generation < generation)
      OPENSSL_cleanse(&r->cache[i], sizeof r->cache[i]);
}

/* ---------- frame syntax ---------- */

int kmk_dave_frame_parse(const uint8_t *frame, size_t len, kmk_dave_frame_info *info) {
  memset(info, 0, sizeof *info);
  if (!frame || len < 2 || frame[len - 1] != 0xFA || frame[len - 2] != 0xFA)
    return KMK_DAVE_ERR_NOT_ENCRYPTED;
  if (len < 3) return KMK_DAVE_ERR_DECODE;
  size_t supp = frame[len - 3];
  if (supp < KMK_DAVE_TAG_LEN + 1 + 1 + 2 || supp > len) return KMK_DAVE_ERR_DECODE;
  info->body_len = len - supp;
  info->tag = frame + info->body_len;
  const uint8_t *p = info->tag + KMK_DAVE_TAG_LEN, *end = frame + len - 3;
  uint64_t v;
  size_t used = kmk_dave_uleb128_read(p, (size_t)(end - p), &v);
  if (!used || v > UINT32_MAX) return KMK_DAVE_ERR_DECODE;
  info->nonce = (uint32_t)v;
  p += used;
  uint64_t prev_end = 0;
  while (p < end) {
    uint64_t off, size;
    size_t a = kmk_dave_uleb128_read(p, (size_t)(end - p), &off);
    if (!a) return KMK_DAVE_ERR_DECODE;
    size_t b = kmk_dave_uleb128_read(p + a, (size_t)(end - p - a), &size);
    if (!b) return KMK_DAVE_ERR_DECODE;
    p += a + b;
    if (info->n_ranges >= KMK_DAVE_MAX_RANGES) return KMK_DAVE_ERR_DECODE;
    if (off < prev_end || off > info->body_len || size > info->body_len - off)
      return KMK_DAVE_ERR_DECODE;
    info->range_off[info->n_ranges] = off;
    info->range_len[info->n_ranges] = size;
    info->n_ranges++;
    prev_end = off + size;
  }
  return 0;
}

static void gcm_nonce(uint32_t n, uint8_t iv[12]) {
  memset(iv, 0, 8);
  iv[8] = (uint8_t)n;
  iv[9] = (uint8_t)(n >> 8);
  iv[10] = (uint8_t)(n >> 16);
  iv[11] = (uint8_t)(n >> 24);
}

/* ---------- sender ---------- */

void kmk_dave_encryptor_init(kmk_dave_encryptor *e) { memset(e, 0, sizeof *e); }

void kmk_dave_encryptor_wipe(kmk_dave_encryptor *e) { OPENSSL_cleanse(e, sizeof *e); }

int kmk_dave_encryptor_set_key(kmk_dave_encryptor *e, const uint8_t *base, size_t base_len) {
  kmk_dave_encryptor_wipe(e);
  return kmk_dave_ratchet_init(&e->ratchet, base, base_len);
}

int kmk_dave_encrypt_opus_nonce(kmk_dave_encryptor *e, uint32_t nonce, const uint8_t *frame,
                                size_t len, uint8_t *out, size_t out_cap, size_t *out_len) {
  if ((!frame && len) || !out || !out_len || len > INT32_MAX) return KMK_DAVE_ERR_ARG;
  if (len == sizeof SILENCE && memcmp(frame, SILENCE, sizeof SILENCE) == 0) {
    if (out_cap < len) return KMK_DAVE_ERR_ARG;
    memcpy(out, frame, len);
    *out_len = len;
    return 0;
  }
  uint8_t nb[10];
  size_t nl = kmk_dave_uleb128_write(nonce, nb);
  size_t supp = KMK_DAVE_TAG_LEN + nl + 1 + 2;
  if (out_cap < len + supp) return KMK_DAVE_ERR_ARG;
  if (!e->ratchet.valid) return KMK_DAVE_ERR_NO_KEY;
  /* the encryptor's generation follows its 64-bit counter; explicit nonces use nonce >> 24 */
  uint32_t gen = (uint32_t)((e->counter & ~(uint64_t)UINT32_MAX) >> 24) + (nonce >> 24);
  if (!e->have_key || gen != e->gen) {
    int rc = kmk_dave_ratchet_get(&e->ratchet, gen, e->key);
    if (rc) return rc;
    kmk_dave_ratchet_forget_below(&e->ratchet, gen);
    e->gen = gen;
    e->have_key = 1;
  }
  uint8_t iv[12];
  gcm_nonce(nonce, iv);
  if (kmk_mls_aead_seal_tag(e->key, iv, NULL, 0, frame, len, out, out + len, KMK_DAVE_TAG_LEN))
    return KMK_DAVE_ERR_CRYPTO;
  size_t o = len + KMK_DAVE_TAG_LEN;
  memcpy(out + o, nb, nl);
  o += nl;
  out[o++] = (uint8_t)supp;
  out[o++] = 0xFA;
  out[o++] = 0xFA;
  *out_len = o;
  return 0;
}

int kmk_dave_encrypt_opus(kmk_dave_encryptor *e, const uint8_t *frame, size_t len, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
  if (frame && len == sizeof SILENCE && memcmp(frame, SILENCE, sizeof SILENCE) == 0)
    return kmk_dave_encrypt_opus_nonce(e, 0, frame, len, out, out_cap, out_len);
  uint64_t next = e->counter + 1; /* the first frame carries nonce 1 */
  uint64_t saved = e->counter;
  e->counter = next & ~(uint64_t)UINT32_MAX; /* high part selects the wrapped generation */
  int rc = kmk_dave_encrypt_opus_nonce(e, (uint32_t)next, frame, len, out, out_cap, out_len);
  e->counter = rc ? saved : next;
  return rc;
}

/* ---------- receiver ---------- */

void kmk_dave_decryptor_init(kmk_dave_decryptor *d) { memset(d, 0, sizeof *d); }

void kmk_dave_decryptor_wipe(kmk_dave_decryptor *d) { OPENSSL_cleanse(d, sizeof *d); }

static void slot_drop(kmk_dave_rx_ratchet *s) { OPENSSL_cleanse(s, sizeof *s); }

int kmk_dave_decryptor_set_key(kmk_dave_decryptor *d, const uint8_t *base, size_t base_len,
                               uint64_t now_ms) {
  kmk_dave_rx_ratchet *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < KMK_DAVE_MAX_RATCHETS; i++) {
    kmk_dave_rx_ratchet *s = &d->slots[i];
    if (!s->used) {
      if (!free_slot) free_slot = s;
      continue;
    }
    if (!s->expires_ms) s->expires_ms = now_ms + KMK_DAVE_TRANSITION_EXPIRY_MS;
    if (!oldest || s->seq < oldest->seq) oldest = s;
  }
  kmk_dave_rx_ratchet *s = free_slot ? free_slot : oldest;
  slot_drop(s);
  int rc = kmk_dave_ratchet_init(&s->ratchet, base, base_len);
  if (rc) return rc;
  s->used = 1;
  s->seq = ++d->next_seq;
  return 0;
}

static uint32_t wrapped_generation(uint32_t oldest, uint32_t g8) {
  uint32_t rem = oldest % 256;
  uint32_t factor = oldest / 256 + (g8 < rem ? 1 : 0);
  return factor * 256 + g8;
}

static void slot_expire_keys(kmk_dave_rx_ratchet *s, uint64_t now_ms) {
  uint32_t oldest = s->newest_gen;
  for (int i = 0; i < KMK_DAVE_KEY_CACHE; i++) {
    kmk_dave_key_slot *k = &s->ratchet.cache[i];
    if (!k->used) continue;
    if (k->expires_ms && now_ms >= k->expires_ms) {
      OPENSSL_cleanse(k, sizeof *k);
      continue;
    }
    if (k->generation < oldest) oldest = k->generation;
  }
  if (oldest > s->oldest_gen) s->oldest_gen = oldest;
}

static int missing_find(const kmk_dave_rx_ratchet *s, uint64_t big) {
  for (size_t i = 0; i < s->missing_count; i++)
    if (s->missing[i] == big) return (int)i;
  return -1;
}

static int can_process(const kmk_dave_rx_ratchet *s, uint64_t big) {
  return !s->have_newest || big > s->newest_nonce || missing_find(s, big) >= 0;
}

static void report_success(kmk_dave_rx_ratchet *s, uint32_t gen, uint64_t big, uint64_t now_ms) {
  if (!s->have_newest || big > s->newest_nonce) {
    uint64_t lower = big > KMK_DAVE_MAX_MISSING_NONCES ? big - KMK_DAVE_MAX_MISSING_NONCES : 0;
    size_t drop = 0;
    while (drop < s->missing_count && s->missing[drop] < lower) drop++;
    memmove(s->missing, s->missing + drop, (s->missing_count - drop) * sizeof s->missing[0]);
    s->missing_count -= drop;
    uint64_t start = s->have_newest && s->newest_nonce + 1 > lower ? s->newest_nonce + 1 : lower;
    for (uint64_t n = start; n < big; n++) {
      if (s->missing_count == KMK_DAVE_MAX_MISSING_NONCES) { /* keep the newest window */
        memmove(s->missing, s->missing + 1, (s->missing_count - 1) * sizeof s->missing[0]);
        s->missing_count--;
      }
      s->missing[s->missing_count++] = n;
    }
    s->newest_nonce = big;
    s->have_newest = 1;
  } else {
    int i = missing_find(s, big);
    if (i >= 0) {
      memmove(s->missing + i, s->missing + i + 1,
              (s->missing_count - (size_t)i - 1) * sizeof s->missing[0]);
      s->missing_count--;
    }
  }
  if (gen > s->newest_gen) {
    for (int i = 0; i < KMK_DAVE_KEY_CACHE; i++) {
      kmk_dave_key_slot *k = &s->ratchet.cache[i];
      if (k->used && k->generation < gen && !k->expires_ms)
        k->expires_ms = now_ms + KMK_DAVE_GEN_EXPIRY_MS;
    }
    s->newest_gen = gen;
  }
}

/* Decrypts body (with ranges) under key; writes body_len bytes to out. */
static int open_body(const uint8_t key[16], const uint8_t *frame, const kmk_dave_frame_info *fi,
                     uint8_t *out) {
  uint8_t iv[12];
  gcm_nonce(fi->nonce, iv);
  if (fi->n_ranges == 0) {
    int rc = kmk_mls_aead_open_tag(key, iv, NULL, 0, frame, fi->body_len, fi->tag,
                                   KMK_DAVE_TAG_LEN, out);
    return rc == KMK_MLS_ERR_VERIFY ? KMK_DAVE_ERR_VERIFY : rc ? KMK_DAVE_ERR_CRYPTO : 0;
  }
  /* Gather the unencrypted ranges as AAD and the rest as ciphertext. */
  uint8_t *aad = malloc(fi->body_len + 1), *ct = malloc(fi->body_len + 1);
  if (!aad || !ct) {
    free(aad);
    free(ct);
    return KMK_DAVE_ERR_CRYPTO;
  }
  size_t an = 0, cn = 0, pos = 0;
  for (size_t i = 0; i <= fi->n_ranges; i++) {
    size_t ro = i < fi->n_ranges ? (size_t)fi->range_off[i] : fi->body_len;
    size_t rl = i < fi->n_ranges ? (size_t)fi->range_len[i] : 0;
    memcpy(ct + cn, frame + pos, ro - pos);
    cn += ro - pos;
    memcpy(aad + an, frame + ro, rl);
    an += rl;
    pos = ro + rl;
  }
  int rc = kmk_mls_aead_open_tag(key, iv, aad, an, ct, cn, fi->tag, KMK_DAVE_TAG_LEN, ct);
  rc = rc == KMK_MLS_ERR_VERIFY ? KMK_DAVE_ERR_VERIFY : rc ? KMK_DAVE_ERR_CRYPTO : 0;
  if (!rc) { /* scatter back */
    size_t ci = 0;
    pos = 0;
    for (size_t i = 0; i <= fi->n_ranges; i++) {
      size_t ro = i < fi->n_ranges ? (size_t)fi->range_off[i] : fi->body_len;
      size_t rl = i < fi->n_ranges ? (size_t)fi->range_len[i] : 0;
      memcpy(out + pos, ct + ci, ro - pos);
      ci += ro - pos;
      memcpy(out + ro, frame + ro, rl);
      pos = ro + rl;
    }
  }
  OPENSSL_cleanse(ct, fi->body_len);
  free(aad);
  free(ct);
  return rc;
}

int kmk_dave_decrypt_opus(kmk_dave_decryptor *d, const uint8_t *frame, size_t len, uint8_t *out,
                          size_t out_cap, size_t *out_len, uint64_t now_ms) {
  if ((!frame && len) || !out || !out_len) return KMK_DAVE_ERR_ARG;
  if (len == sizeof SILENCE && memcmp(frame, SILENCE, sizeof SILENCE) == 0) {
    if (out_cap < len) return KMK_DAVE_ERR_ARG;
    memcpy(out, frame, len);
    *out_len = len;
    return 0;
  }
  kmk_dave_frame_info fi;
  int rc = kmk_dave_frame_parse(frame, len, &fi);
  if (rc) {
    if (rc != KMK_DAVE_ERR_NOT_ENCRYPTED) d->failures++;
    return rc;
  }
  if (out_cap < fi.body_len) return KMK_DAVE_ERR_ARG;
  int best = KMK_DAVE_ERR_NO_KEY;
  for (int i = 0; i < KMK_DAVE_MAX_RATCHETS; i++) { /* old epochs expire */
    kmk_dave_rx_ratchet *c = &d->slots[i];
    if (c->used && c->expires_ms && now_ms >= c->expires_ms) slot_drop(c);
  }
  /* Try slots in descending seq order. */
  uint64_t below = UINT64_MAX;
  for (;;) {
    kmk_dave_rx_ratchet *s = NULL;
    for (int i = 0; i < KMK_DAVE_MAX_RATCHETS; i++) {
      kmk_dave_rx_ratchet *c = &d->slots[i];
      if (c->used && c->seq < below && (!s || c->seq > s->seq)) s = c;
    }
    if (!s) break;
    below = s->seq;
    slot_expire_keys(s, now_ms);
    uint32_t gen = wrapped_generation(s->oldest_gen, fi.nonce >> 24);
    uint64_t big = ((uint64_t)gen << 24) | (fi.nonce & 0xFFFFFF);
    if (!can_process(s, big)) {
      if (best == KMK_DAVE_ERR_NO_KEY) best = KMK_DAVE_ERR_REPLAY;
      continue;
    }
    if (gen > s->newest_gen + KMK_DAVE_MAX_GENERATION_GAP) continue;
    uint8_t key[KMK_DAVE_KEY_LEN];
    if (kmk_dave_ratchet_get(&s->ratchet, gen, key)) continue;
    rc = open_body(key, frame, &fi, out);
    OPENSSL_cleanse(key, sizeof key);
    if (rc == 0) {
      report_success(s, gen, big, now_ms);
      d->failures = 0;
      *out_len = fi.body_len;
      return 0;
    }
    if (rc == KMK_DAVE_ERR_VERIFY) best = KMK_DAVE_ERR_VERIFY;
    else if (rc) best = rc;
  }
  d->failures++;
  return best;
}

/* ---------- voice privacy code ---------- */

int kmk_dave_displayable_code(const uint8_t *data, size_t len, size_t digits, size_t group,
                              char *out) {
  if (!data || !out || group == 0 || group > 8 || digits % group || len < digits)
    return KMK_DAVE_ERR_ARG;
  uint64_t mod = 1;
  for (size_t i = 0; i < group; i++) mod *= 10;
  for (size_t i = 0; i < digits; i += group) {
    uint64_t v = 0;
    for (size_t j = 0; j < group; j++) v = (v << 8) | data[i + j];
    v %= mod;
    for (size_t j = group; j > 0; j--) {
      out[i + j - 1] = (char)('0' + v % 10);
      v /= 10;
    }
  }
  out[digits] = 0;
  return 0;
}
