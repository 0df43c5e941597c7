/* mls_schedule.c - owns the per-epoch secret derivations of RFC 9420: the key schedule (section
 * 8) and exporter, GroupContext serialisation, transcript hashes (8.2), confirmation tags, the
 * secret tree and its hash ratchets (section 9) and sender-data keys (6.3.2).
 * Pure functions; any thread. Intermediate secrets are wiped before returning.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls.h"

static const uint8_t ZERO[KMK_MLS_NH];

void kmk_mls_epoch_secrets_wipe(kmk_mls_epoch_secrets *s) { OPENSSL_cleanse(s, sizeof *s); }

int kmk_mls_group_context_encode(const uint8_t *group_id, size_t gid_len, uint64_t epoch,
                                 const uint8_t *tree_hash, size_t th_len, const uint8_t *cth,
                                 size_t cth_len, const uint8_t *extensions, size_t ext_len,
                                 kmk_mls_bytes *out) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u16(&w, 1); /* mls10 */
  kmk_mls_w_u16(&w, KMK_MLS_SUITE);
  kmk_mls_w_vec(&w, group_id, gid_len);
  kmk_mls_w_u64(&w, epoch);
  kmk_mls_w_vec(&w, tree_hash, th_len);
  kmk_mls_w_vec(&w, cth, cth_len);
  kmk_mls_w_vec(&w, extensions, ext_len);
  return kmk_mls_w_finish(&w, out);
}

static int member_secret(const uint8_t joiner[KMK_MLS_NH], const uint8_t *psk_secret,
                         uint8_t out[KMK_MLS_NH]) {
  return kmk_mls_hkdf_extract(joiner, KMK_MLS_NH, psk_secret ? psk_secret : ZERO, KMK_MLS_NH,
                              out);
}

int kmk_mls_welcome_secret(const uint8_t joiner_secret[KMK_MLS_NH], const uint8_t *psk_secret,
                           uint8_t out[KMK_MLS_NH]) {
  uint8_t member[KMK_MLS_NH];
  int rc = member_secret(joiner_secret, psk_secret, member);
  if (!rc) rc = kmk_mls_derive_secret(member, KMK_MLS_NH, "welcome", out);
  OPENSSL_cleanse(member, sizeof member);
  return rc;
}

int kmk_mls_key_schedule_from_joiner(const uint8_t joiner_secret[KMK_MLS_NH],
                                     const uint8_t *psk_secret, const uint8_t *group_context,
                                     size_t gc_len, kmk_mls_epoch_secrets *s) {
  uint8_t member[KMK_MLS_NH];
  if (s->joiner != joiner_secret) memcpy(s->joiner, joiner_secret, KMK_MLS_NH);
  int rc = member_secret(joiner_secret, psk_secret, member);
  if (!rc) rc = kmk_mls_derive_secret(member, KMK_MLS_NH, "welcome", s->welcome);
  if (!rc)
    rc = kmk_mls_expand_with_label(member, KMK_MLS_NH, "epoch", group_context, gc_len, s->epoch,
                                   KMK_MLS_NH);
  OPENSSL_cleanse(member, sizeof member);
  if (rc) {
    kmk_mls_epoch_secrets_wipe(s);
    return rc;
  }
  return kmk_mls_epoch_secrets_derive(s);
}

int kmk_mls_epoch_secrets_derive(kmk_mls_epoch_secrets *s) {
  int rc = 0;
  static const struct {
    const char *label;
    size_t off;
  } derived[] = {
      {"sender data", offsetof(kmk_mls_epoch_secrets, sender_data)},
      {"encryption", offsetof(kmk_mls_epoch_secrets, encryption)},
      {"exporter", offsetof(kmk_mls_epoch_secrets, exporter)},
      {"external", offsetof(kmk_mls_epoch_secrets, external)},
      {"confirm", offsetof(kmk_mls_epoch_secrets, confirmation_key)},
      {"membership", offsetof(kmk_mls_epoch_secrets, membership_key)},
      {"resumption", offsetof(kmk_mls_epoch_secrets, resumption_psk)},
      {"authentication", offsetof(kmk_mls_epoch_secrets, epoch_authenticator)},
      {"init", offsetof(kmk_mls_epoch_secrets, init)},
  };
  for (size_t i = 0; !rc && i < sizeof derived / sizeof derived[0]; i++)
    rc = kmk_mls_derive_secret(s->epoch, KMK_MLS_NH, derived[i].label,
                               (uint8_t *)s + derived[i].off);
  if (rc) kmk_mls_epoch_secrets_wipe(s);
  return rc;
}

int kmk_mls_key_schedule(const uint8_t init_secret[KMK_MLS_NH], const uint8_t *commit_secret,
                         const uint8_t *psk_secret, const uint8_t *group_context, size_t gc_len,
                         kmk_mls_epoch_secrets *s) {
  uint8_t prk[KMK_MLS_NH], joiner[KMK_MLS_NH];
  int rc = kmk_mls_hkdf_extract(init_secret, KMK_MLS_NH, commit_secret ? commit_secret : ZERO,
                                KMK_MLS_NH, prk);
  if (!rc)
    rc = kmk_mls_expand_with_label(prk, KMK_MLS_NH, "joiner", group_context, gc_len, joiner,
                                   KMK_MLS_NH);
  if (!rc) rc = kmk_mls_key_schedule_from_joiner(joiner, psk_secret, group_context, gc_len, s);
  OPENSSL_cleanse(prk, sizeof prk);
  OPENSSL_cleanse(joiner, sizeof joiner);
  return rc;
}

int kmk_mls_export(const uint8_t exporter_secret[KMK_MLS_NH], const uint8_t *label,
                   size_t label_len, const uint8_t *ctx, size_t clen, uint8_t *out, size_t olen) {
  /* MLS-Exporter: ExpandWithLabel(DeriveSecret(exporter, label), "exported", Hash(ctx), len).
   * The label is arbitrary bytes here, so DeriveSecret is spelled out. */
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u16(&w, KMK_MLS_NH);
  size_t m = kmk_mls_w_begin(&w);
  kmk_mls_w_raw(&w, "MLS 1.0 ", 8);
  kmk_mls_w_raw(&w, label, label_len);
  kmk_mls_w_end(&w, m);
  kmk_mls_w_vec(&w, NULL, 0);
  uint8_t derived[KMK_MLS_NH], h[KMK_MLS_NH];
  int rc = w.err;
  if (!rc) rc = kmk_mls_hkdf_expand(exporter_secret, KMK_MLS_NH, w.buf, w.len, derived, KMK_MLS_NH);
  kmk_mls_w_free(&w);
  if (!rc) rc = kmk_mls_hash(ctx, clen, h);
  if (!rc) rc = kmk_mls_expand_with_label(derived, KMK_MLS_NH, "exported", h, KMK_MLS_NH, out, olen);
  OPENSSL_cleanse(derived, sizeof derived);
  return rc;
}

/* ---------- transcript hashes ---------- */

int kmk_mls_transcript_confirmed(const uint8_t *interim_before, size_t ib_len,
                                 const uint8_t *confirmed_input, size_t ci_len,
                                 uint8_t confirmed_out[KMK_MLS_NH]) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_raw(&w, interim_before, ib_len);
  kmk_mls_w_raw(&w, confirmed_input, ci_len);
  int rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, confirmed_out);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_transcript_interim(const uint8_t confirmed[KMK_MLS_NH], const uint8_t *tag,
                               size_t tag_len, uint8_t interim_out[KMK_MLS_NH]) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_raw(&w, confirmed, KMK_MLS_NH);
  kmk_mls_w_vec(&w, tag, tag_len);
  int rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, interim_out);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_confirmation_tag(const uint8_t key[KMK_MLS_NH], const uint8_t confirmed[KMK_MLS_NH],
                             uint8_t tag[KMK_MLS_NH]) {
  return kmk_mls_mac(key, KMK_MLS_NH, confirmed, KMK_MLS_NH, tag);
}

/* ---------- secret tree ---------- */

int kmk_mls_secret_tree_leaf(const uint8_t encryption_secret[KMK_MLS_NH], uint32_t n_leaves,
                             uint32_t leaf, uint8_t out[KMK_MLS_NH]) {
  if (n_leaves == 0 || leaf >= n_leaves || (n_leaves & (n_leaves - 1))) return KMK_MLS_ERR_ARG;
  uint32_t target = 2 * leaf, node = kmk_mls_tree_root(n_leaves);
  uint8_t cur[KMK_MLS_NH];
  memcpy(cur, encryption_secret, KMK_MLS_NH);
  int rc = 0;
  while (!rc && node != target) {
    int right = target > node;
    rc = kmk_mls_expand_with_label(cur, KMK_MLS_NH, "tree", (const uint8_t *)(right ? "right" : "left"),
                                   right ? 5 : 4, cur, KMK_MLS_NH);
    node = (uint32_t)(right ? kmk_mls_tree_right(node) : kmk_mls_tree_left(node));
  }
  if (!rc) memcpy(out, cur, KMK_MLS_NH);
  OPENSSL_cleanse(cur, sizeof cur);
  return rc;
}

int kmk_mls_ratchet_step(const uint8_t *secret, size_t slen, uint32_t generation,
                         uint8_t key[KMK_MLS_NK], uint8_t nonce[KMK_MLS_NN],
                         uint8_t next[KMK_MLS_NH]) {
  int rc = 0;
  if (key) rc = kmk_mls_derive_tree_secret(secret, slen, "key", generation, key, KMK_MLS_NK);
  if (!rc && nonce)
    rc = kmk_mls_derive_tree_secret(secret, slen, "nonce", generation, nonce, KMK_MLS_NN);
  if (!rc && next)
    rc = kmk_mls_derive_tree_secret(secret, slen, "secret", generation, next, KMK_MLS_NH);
  return rc;
}

int kmk_mls_sender_data_keys(const uint8_t sender_data_secret[KMK_MLS_NH], const uint8_t *ct,
                             size_t ct_len, uint8_t key[KMK_MLS_NK], uint8_t nonce[KMK_MLS_NN]) {
  size_t n = ct_len < KMK_MLS_NH ? ct_len : KMK_MLS_NH;
  int rc = kmk_mls_expand_with_label(sender_data_secret, KMK_MLS_NH, "key", ct, n, key, KMK_MLS_NK);
  if (!rc)
    rc = kmk_mls_expand_with_label(sender_data_secret, KMK_MLS_NH, "nonce", ct, n, nonce,
                                   KMK_MLS_NN);
  return rc;
}

/* ---------- pre-shared keys ---------- */

int kmk_mls_psk_secret(const kmk_mls_psk_input *psks, size_t n, uint8_t out[KMK_MLS_NH]) {
  if (n > 0xffff) return KMK_MLS_ERR_ARG;
  uint8_t secret[KMK_MLS_NH] = {0}, extracted[KMK_MLS_NH], input[KMK_MLS_NH];
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = kmk_mls_hkdf_extract(ZERO, KMK_MLS_NH, psks[i].psk, psks[i].psk_len, extracted);
    kmk_mls_w w; /* PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; } */
    kmk_mls_w_init(&w);
    kmk_mls_w_raw(&w, psks[i].id, psks[i].id_len);
    kmk_mls_w_u16(&w, (uint16_t)i);
    kmk_mls_w_u16(&w, (uint16_t)n);
    if (!rc) rc = w.err;
    if (!rc)
      rc = kmk_mls_expand_with_label(extracted, KMK_MLS_NH, "derived psk", w.buf, w.len, input,
                                     KMK_MLS_NH);
    kmk_mls_w_free(&w);
    if (!rc) rc = kmk_mls_hkdf_extract(input, KMK_MLS_NH, secret, KMK_MLS_NH, secret);
  }
  if (!rc) memcpy(out, secret, KMK_MLS_NH);
  OPENSSL_cleanse(secret, sizeof secret);
  OPENSSL_cleanse(extracted, sizeof extracted);
  OPENSSL_cleanse(input, sizeof input);
  return rc;
}
