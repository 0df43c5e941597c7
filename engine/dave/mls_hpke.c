/* mls_hpke.c - owns RFC 9180 HPKE in base mode for one suite: DHKEM(P-256, HKDF-SHA256) (kem
 * 0x0010), HKDF-SHA256 (kdf 0x0001), AES-128-GCM (aead 0x0001); single-shot Seal/Open at sequence
 * number 0, DeriveKeyPair, and MLS's EncryptWithLabel/DecryptWithLabel on top (RFC 9420 5.1.3).
 * OpenSSL 3.0 has no HPKE API, so the labelled extract/expand steps are written out here.
 * Pure functions; any thread. Every intermediate secret is wiped before returning.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls.h"

int kmk_mls_p256_scalar_ok(const uint8_t s[32]); /* mls_crypto.c */

static const uint8_t KEM_SUITE[5] = {'K', 'E', 'M', 0x00, 0x10};
static const uint8_t HPKE_SUITE[10] = {'H', 'P', 'K', 'E', 0x00, 0x10, 0x00, 0x01, 0x00, 0x01};

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite || label || ikm). */
static int labeled_extract(const uint8_t *suite, size_t suite_len, const uint8_t *salt,
                           size_t slen, const char *label, const uint8_t *ikm, size_t ilen,
                           uint8_t prk[KMK_MLS_NH]) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_raw(&w, "HPKE-v1", 7);
  kmk_mls_w_raw(&w, suite, suite_len);
  kmk_mls_w_raw(&w, label, strlen(label));
  kmk_mls_w_raw(&w, ikm, ilen);
  int rc = w.err ? w.err : kmk_mls_hkdf_extract(salt, slen, w.buf, w.len, prk);
  kmk_mls_w_free(&w);
  return rc;
}

/* LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L,2) || "HPKE-v1" || suite || label ||
 * info, L). */
static int labeled_expand(const uint8_t *suite, size_t suite_len, const uint8_t *prk,
                          const char *label, const uint8_t *info, size_t ilen, uint8_t *out,
                          size_t olen) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u16(&w, (uint16_t)olen);
  kmk_mls_w_raw(&w, "HPKE-v1", 7);
  kmk_mls_w_raw(&w, suite, suite_len);
  kmk_mls_w_raw(&w, label, strlen(label));
  kmk_mls_w_raw(&w, info, ilen);
  int rc = w.err ? w.err : kmk_mls_hkdf_expand(prk, KMK_MLS_NH, w.buf, w.len, out, olen);
  kmk_mls_w_free(&w);
  return rc;
}

/* ExtractAndExpand(dh, kem_context) -> 32-byte shared secret. */
static int kem_shared(const uint8_t dh[32], const uint8_t *enc, const uint8_t *pk_rm,
                      uint8_t shared[32]) {
  uint8_t prk[KMK_MLS_NH], ctx[2 * KMK_MLS_PUB];
  memcpy(ctx, enc, KMK_MLS_PUB);
  memcpy(ctx + KMK_MLS_PUB, pk_rm, KMK_MLS_PUB);
  int rc = labeled_extract(KEM_SUITE, sizeof KEM_SUITE, NULL, 0, "eae_prk", dh, 32, prk);
  if (!rc)
    rc = labeled_expand(KEM_SUITE, sizeof KEM_SUITE, prk, "shared_secret", ctx, sizeof ctx,
                        shared, 32);
  OPENSSL_cleanse(prk, sizeof prk);
  return rc;
}

/* KeySchedule in base mode: key (16) and base_nonce (12) from shared secret and info. */
static int key_schedule(const uint8_t shared[32], const uint8_t *info, size_t info_len,
                        uint8_t key[KMK_MLS_NK], uint8_t nonce[KMK_MLS_NN]) {
  uint8_t ksc[1 + 2 * KMK_MLS_NH], secret[KMK_MLS_NH];
  ksc[0] = 0; /* mode_base */
  int rc = labeled_extract(HPKE_SUITE, sizeof HPKE_SUITE, NULL, 0, "psk_id_hash", NULL, 0,
                           ksc + 1);
  if (!rc)
    rc = labeled_extract(HPKE_SUITE, sizeof HPKE_SUITE, NULL, 0, "info_hash", info, info_len,
                         ksc + 1 + KMK_MLS_NH);
  if (!rc)
    rc = labeled_extract(HPKE_SUITE, sizeof HPKE_SUITE, shared, 32, "secret", NULL, 0, secret);
  if (!rc)
    rc = labeled_expand(HPKE_SUITE, sizeof HPKE_SUITE, secret, "key", ksc, sizeof ksc, key,
                        KMK_MLS_NK);
  if (!rc)
    rc = labeled_expand(HPKE_SUITE, sizeof HPKE_SUITE, secret, "base_nonce", ksc, sizeof ksc,
                        nonce, KMK_MLS_NN);
  OPENSSL_cleanse(secret, sizeof secret);
  return rc;
}

int kmk_mls_hpke_seal_eph(const uint8_t *pk_r, size_t pk_len, const uint8_t eph_priv[32],
                          const uint8_t *info, size_t info_len, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len,
                          uint8_t kem_output[KMK_MLS_PUB], uint8_t *ct) {
  if (pk_len != KMK_MLS_PUB) return KMK_MLS_ERR_CRYPTO;
  uint8_t dh[32], shared[32], key[KMK_MLS_NK], nonce[KMK_MLS_NN];
  int rc = kmk_mls_p256_pub_from_priv(eph_priv, kem_output);
  if (!rc) rc = kmk_mls_ecdh(eph_priv, pk_r, pk_len, dh);
  if (!rc) rc = kem_shared(dh, kem_output, pk_r, shared);
  if (!rc) rc = key_schedule(shared, info, info_len, key, nonce);
  if (!rc) rc = kmk_mls_aead_seal(key, nonce, aad, aad_len, pt, pt_len, ct);
  OPENSSL_cleanse(dh, sizeof dh);
  OPENSSL_cleanse(shared, sizeof shared);
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

int kmk_mls_hpke_seal(const uint8_t *pk_r, size_t pk_len, const uint8_t *info, size_t info_len,
                      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                      uint8_t kem_output[KMK_MLS_PUB], uint8_t *ct) {
  uint8_t eph[32], eph_pub[KMK_MLS_PUB];
  int rc = kmk_mls_p256_keygen(eph, eph_pub);
  if (!rc)
    rc = kmk_mls_hpke_seal_eph(pk_r, pk_len, eph, info, info_len, aad, aad_len, pt, pt_len,
                               kem_output, ct);
  OPENSSL_cleanse(eph, sizeof eph);
  return rc;
}

int kmk_mls_hpke_open(const uint8_t sk_r[KMK_MLS_PRIV], const uint8_t *kem_output,
                      size_t kem_len, const uint8_t *info, size_t info_len, const uint8_t *aad,
                      size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *pt) {
  if (kem_len != KMK_MLS_PUB) return KMK_MLS_ERR_DECODE;
  if (ct_len < KMK_MLS_NT) return KMK_MLS_ERR_DECODE;
  uint8_t pk_rm[KMK_MLS_PUB], dh[32], shared[32], key[KMK_MLS_NK], nonce[KMK_MLS_NN];
  int rc = kmk_mls_p256_pub_from_priv(sk_r, pk_rm);
  if (!rc) rc = kmk_mls_ecdh(sk_r, kem_output, kem_len, dh);
  if (!rc) rc = kem_shared(dh, kem_output, pk_rm, shared);
  if (!rc) rc = key_schedule(shared, info, info_len, key, nonce);
  if (!rc) rc = kmk_mls_aead_open(key, nonce, aad, aad_len, ct, ct_len, pt);
  OPENSSL_cleanse(dh, sizeof dh);
  OPENSSL_cleanse(shared, sizeof shared);
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

int kmk_mls_hpke_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t priv[KMK_MLS_PRIV],
                                 uint8_t pub[KMK_MLS_PUB]) {
  uint8_t prk[KMK_MLS_NH];
  int rc = labeled_extract(KEM_SUITE, sizeof KEM_SUITE, NULL, 0, "dkp_prk", ikm, ikm_len, prk);
  for (unsigned counter = 0; !rc && counter < 256; counter++) {
    uint8_t c = (uint8_t)counter;
    rc = labeled_expand(KEM_SUITE, sizeof KEM_SUITE, prk, "candidate", &c, 1, priv, 32);
    if (rc) break;
    /* The P-256 bitmask is 0xff: the candidate is used as is. */
    if (kmk_mls_p256_scalar_ok(priv)) {
      rc = kmk_mls_p256_pub_from_priv(priv, pub);
      OPENSSL_cleanse(prk, sizeof prk);
      return rc;
    }
  }
  OPENSSL_cleanse(prk, sizeof prk);
  OPENSSL_cleanse(priv, 32);
  return rc ? rc : KMK_MLS_ERR_CRYPTO;
}

/* EncryptContext { opaque label<V> = "MLS 1.0 " + label; opaque context<V>; } */
static int encrypt_context(kmk_mls_w *w, const char *label, const uint8_t *ctx, size_t clen) {
  static const char prefix[] = "MLS 1.0 ";
  kmk_mls_w_init(w);
  size_t m = kmk_mls_w_begin(w);
  kmk_mls_w_raw(w, prefix, sizeof prefix - 1);
  kmk_mls_w_raw(w, label, strlen(label));
  kmk_mls_w_end(w, m);
  return kmk_mls_w_vec(w, ctx, clen);
}

int kmk_mls_encrypt_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                               const uint8_t *ctx, size_t clen, const uint8_t *pt, size_t pt_len,
                               uint8_t kem_output[KMK_MLS_PUB], uint8_t *ct) {
  kmk_mls_w w;
  int rc = encrypt_context(&w, label, ctx, clen);
  if (!rc) rc = kmk_mls_hpke_seal(pub, pub_len, w.buf, w.len, NULL, 0, pt, pt_len, kem_output, ct);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_decrypt_with_label(const uint8_t priv[KMK_MLS_PRIV], const char *label,
                               const uint8_t *ctx, size_t clen, const uint8_t *kem_output,
                               size_t kem_len, const uint8_t *ct, size_t ct_len, uint8_t *pt) {
  kmk_mls_w w;
  int rc = encrypt_context(&w, label, ctx, clen);
  if (!rc)
    rc = kmk_mls_hpke_open(priv, kem_output, kem_len, w.buf, w.len, NULL, 0, ct, ct_len, pt);
  kmk_mls_w_free(&w);
  return rc;
}
