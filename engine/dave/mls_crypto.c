/* mls_crypto.c - owns the ciphersuite-2 primitives over OpenSSL 3.0 EVP: SHA-256, HMAC, HKDF,
 * AES-128-GCM, P-256 keys, ECDSA (DER) and ECDH, and the MLS labelled operations built on them
 * (ExpandWithLabel, DeriveSecret, DeriveTreeSecret, RefHash, SignWithLabel, VerifyWithLabel).
 * Pure functions; any thread. Intermediate secrets on the stack are wiped with OPENSSL_cleanse.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "kameko/mls.h"

/* ---------- hash, MAC, HKDF ---------- */

int kmk_mls_hash(const void *p, size_t n, uint8_t out[KMK_MLS_NH]) {
  unsigned int len = 0;
  if (!EVP_Digest(p ? p : "", n, out, &len, EVP_sha256(), NULL) || len != KMK_MLS_NH)
    return KMK_MLS_ERR_CRYPTO;
  return 0;
}

int kmk_mls_mac(const uint8_t *key, size_t klen, const void *p, size_t n,
                uint8_t out[KMK_MLS_NH]) {
  static const uint8_t zero = 0;
  unsigned int len = 0;
  if (klen > INT32_MAX) return KMK_MLS_ERR_ARG;
  if (!HMAC(EVP_sha256(), key ? (const void *)key : &zero, (int)klen,
            p ? p : (const void *)&zero, n, out, &len) ||
      len != KMK_MLS_NH)
    return KMK_MLS_ERR_CRYPTO;
  return 0;
}

int kmk_mls_hkdf_extract(const uint8_t *salt, size_t slen, const uint8_t *ikm, size_t ilen,
                         uint8_t prk[KMK_MLS_NH]) {
  /* RFC 5869: an empty salt means HashLen zero bytes, which HMAC pads to the same key. */
  return kmk_mls_mac(salt, slen, ikm, ilen, prk);
}

int kmk_mls_hkdf_expand(const uint8_t *prk, size_t plen, const uint8_t *info, size_t ilen,
                        uint8_t *out, size_t olen) {
  if (olen > 255 * KMK_MLS_NH || ilen > KMK_MLS_MAX_VEC) return KMK_MLS_ERR_ARG;
  size_t blen = KMK_MLS_NH + ilen + 1;
  uint8_t *buf = malloc(blen);
  if (!buf) return KMK_MLS_ERR_NOMEM;
  uint8_t t[KMK_MLS_NH];
  size_t tlen = 0, done = 0;
  int rc = 0;
  for (uint8_t i = 1; done < olen; i++) {
    memcpy(buf, t, tlen);
    if (ilen) memcpy(buf + tlen, info, ilen);
    buf[tlen + ilen] = i;
    if ((rc = kmk_mls_mac(prk, plen, buf, tlen + ilen + 1, t))) break;
    tlen = KMK_MLS_NH;
    size_t take = olen - done < KMK_MLS_NH ? olen - done : KMK_MLS_NH;
    memcpy(out + done, t, take);
    done += take;
  }
  OPENSSL_cleanse(t, sizeof t);
  OPENSSL_cleanse(buf, blen);
  free(buf);
  return rc;
}

/* ---------- AES-128-GCM ---------- */

static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out, uint8_t *tag,
               size_t tag_len) {
  if (in_len > INT32_MAX || aad_len > INT32_MAX) return KMK_MLS_ERR_ARG;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c) return KMK_MLS_ERR_NOMEM;
  int rc = KMK_MLS_ERR_CRYPTO, len = 0;
  if (!EVP_CipherInit_ex(c, EVP_aes_128_gcm(), NULL, NULL, NULL, enc)) goto out;
  if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, KMK_MLS_NN, NULL)) goto out;
  if (!EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc)) goto out;
  if (aad_len && !EVP_CipherUpdate(c, NULL, &len, aad, (int)aad_len)) goto out;
  if (in_len && !EVP_CipherUpdate(c, out, &len, in, (int)in_len)) goto out;
  if (enc) {
    if (!EVP_CipherFinal_ex(c, out + in_len, &len)) goto out;
    uint8_t full[16];
    if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, full)) goto out;
    memcpy(tag, full, tag_len);
  } else {
    if (!EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, (int)tag_len, (void *)tag)) goto out;
    if (EVP_CipherFinal_ex(c, out + in_len, &len) <= 0) {
      rc = KMK_MLS_ERR_VERIFY;
      OPENSSL_cleanse(out, in_len);
      goto out;
    }
  }
  rc = 0;
out:
  EVP_CIPHER_CTX_free(c);
  return rc;
}

int kmk_mls_aead_seal(const uint8_t key[KMK_MLS_NK], const uint8_t nonce[KMK_MLS_NN],
                      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                      uint8_t *ct) {
  return gcm(1, key, nonce, aad, aad_len, pt, pt_len, ct, ct + pt_len, KMK_MLS_NT);
}

int kmk_mls_aead_open(const uint8_t key[KMK_MLS_NK], const uint8_t nonce[KMK_MLS_NN],
                      const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                      uint8_t *pt) {
  if (ct_len < KMK_MLS_NT) return KMK_MLS_ERR_DECODE;
  return gcm(0, key, nonce, aad, aad_len, ct, ct_len - KMK_MLS_NT, pt, (uint8_t *)ct + ct_len -
             KMK_MLS_NT, KMK_MLS_NT);
}

/* Exposed to dave_media.c through its own prototype: GCM with a truncated tag. */
int kmk_mls_aead_seal_tag(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
                          uint8_t *tag, size_t tag_len);
int kmk_mls_aead_open_tag(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                          size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                          size_t tag_len, uint8_t *pt);

int kmk_mls_aead_seal_tag(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
                          uint8_t *tag, size_t tag_len) {
  if (tag_len < 4 || tag_len > 16) return KMK_MLS_ERR_ARG;
  return gcm(1, key, nonce, aad, aad_len, pt, pt_len, ct, tag, tag_len);
}

int kmk_mls_aead_open_tag(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                          size_t aad_len, const uint8_t *ct, size_t ct_len, const uint8_t *tag,
                          size_t tag_len, uint8_t *pt) {
  if (tag_len < 4 || tag_len > 16) return KMK_MLS_ERR_ARG;
  return gcm(0, key, nonce, aad, aad_len, ct, ct_len, pt, (uint8_t *)tag, tag_len);
}

/* ---------- P-256 keys ---------- */

static const uint8_t P256_ORDER[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

/* Internal (also used by mls_hpke.c): 1 when 0 < s < n. */
int kmk_mls_p256_scalar_ok(const uint8_t s[32]);
int kmk_mls_p256_scalar_ok(const uint8_t s[32]) {
  int nonzero = 0;
  for (int i = 0; i < 32; i++) nonzero |= s[i];
  if (!nonzero) return 0;
  return memcmp(s, P256_ORDER, 32) < 0;
}

int kmk_mls_p256_pub_from_priv(const uint8_t priv[KMK_MLS_PRIV], uint8_t pub[KMK_MLS_PUB]) {
  if (!kmk_mls_p256_scalar_ok(priv)) return KMK_MLS_ERR_CRYPTO;
  int rc = KMK_MLS_ERR_CRYPTO;
  EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
  BIGNUM *k = BN_secure_new();
  if (!g || !pt || !k) goto out;
  if (!BN_bin2bn(priv, KMK_MLS_PRIV, k)) goto out;
  if (!EC_POINT_mul(g, pt, k, NULL, NULL, NULL)) goto out;
  if (EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, KMK_MLS_PUB, NULL) !=
      KMK_MLS_PUB)
    goto out;
  rc = 0;
out:
  BN_clear_free(k);
  EC_POINT_free(pt);
  EC_GROUP_free(g);
  return rc;
}

int kmk_mls_p256_keygen(uint8_t priv[KMK_MLS_PRIV], uint8_t pub[KMK_MLS_PUB]) {
  for (int tries = 0; tries < 64; tries++) {
    if (RAND_priv_bytes(priv, KMK_MLS_PRIV) != 1) return KMK_MLS_ERR_CRYPTO;
    if (kmk_mls_p256_scalar_ok(priv)) return kmk_mls_p256_pub_from_priv(priv, pub);
  }
  return KMK_MLS_ERR_CRYPTO;
}

/* Builds an EVP_PKEY from a public point and optionally a private scalar. Caller frees. */
static EVP_PKEY *make_pkey(const uint8_t *priv, const uint8_t *pub, size_t pub_len) {
  uint8_t derived[KMK_MLS_PUB];
  if (priv) {
    if (kmk_mls_p256_pub_from_priv(priv, derived)) return NULL;
    pub = derived;
    pub_len = KMK_MLS_PUB;
  }
  if (!pub || pub_len != KMK_MLS_PUB || pub[0] != 0x04) return NULL;
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  OSSL_PARAM *params = NULL;
  BIGNUM *k = NULL;
  OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
  if (!b) goto out;
  if (!OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0)) goto out;
  if (!OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len)) goto out;
  if (priv) {
    k = BN_secure_new();
    if (!k || !BN_bin2bn(priv, KMK_MLS_PRIV, k)) goto out;
    if (!OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, k)) goto out;
  }
  params = OSSL_PARAM_BLD_to_param(b);
  ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0) goto out;
  if (EVP_PKEY_fromdata(ctx, &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) <= 0)
    pkey = NULL;
out:
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(b);
  BN_clear_free(k);
  return pkey;
}

int kmk_mls_p256_check_pub(const uint8_t *pub, size_t len) {
  EVP_PKEY *k = make_pkey(NULL, pub, len);
  if (!k) return KMK_MLS_ERR_CRYPTO;
  EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
  int ok = c && EVP_PKEY_public_check(c) == 1;
  EVP_PKEY_CTX_free(c);
  EVP_PKEY_free(k);
  return ok ? 0 : KMK_MLS_ERR_CRYPTO;
}

int kmk_mls_sign(const uint8_t priv[KMK_MLS_PRIV], const void *msg, size_t n, uint8_t *sig,
                 size_t *sig_len) {
  EVP_PKEY *k = make_pkey(priv, NULL, 0);
  if (!k) return KMK_MLS_ERR_CRYPTO;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int rc = KMK_MLS_ERR_CRYPTO;
  size_t need = 0;
  if (c && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1 &&
      EVP_DigestSign(c, NULL, &need, msg, n) == 1) {
    if (need > *sig_len) {
      rc = KMK_MLS_ERR_ARG;
    } else if (EVP_DigestSign(c, sig, sig_len, msg, n) == 1) {
      rc = 0;
    }
  }
  EVP_MD_CTX_free(c);
  EVP_PKEY_free(k);
  return rc;
}

int kmk_mls_verify(const uint8_t *pub, size_t pub_len, const void *msg, size_t n,
                   const uint8_t *sig, size_t sig_len) {
  EVP_PKEY *k = make_pkey(NULL, pub, pub_len);
  if (!k) return KMK_MLS_ERR_CRYPTO;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int rc = KMK_MLS_ERR_CRYPTO;
  if (c && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, k) == 1)
    rc = EVP_DigestVerify(c, sig, sig_len, msg, n) == 1 ? 0 : KMK_MLS_ERR_VERIFY;
  EVP_MD_CTX_free(c);
  EVP_PKEY_free(k);
  return rc;
}

int kmk_mls_ecdh(const uint8_t priv[KMK_MLS_PRIV], const uint8_t *pub, size_t pub_len,
                 uint8_t shared[32]) {
  EVP_PKEY *mine = make_pkey(priv, NULL, 0), *peer = make_pkey(NULL, pub, pub_len);
  EVP_PKEY_CTX *c = mine ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
  int rc = KMK_MLS_ERR_CRYPTO;
  size_t len = 32;
  if (c && peer && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
      EVP_PKEY_derive(c, shared, &len) == 1 && len == 32)
    rc = 0;
  EVP_PKEY_CTX_free(c);
  EVP_PKEY_free(mine);
  EVP_PKEY_free(peer);
  return rc;
}

/* ---------- labelled operations ---------- */

static int w_label(kmk_mls_w *w, const char *label) {
  static const char prefix[] = "MLS 1.0 ";
  size_t m = kmk_mls_w_begin(w);
  kmk_mls_w_raw(w, prefix, sizeof prefix - 1);
  kmk_mls_w_raw(w, label, strlen(label));
  return kmk_mls_w_end(w, m);
}

int kmk_mls_expand_with_label(const uint8_t *secret, size_t slen, const char *label,
                              const uint8_t *ctx, size_t clen, uint8_t *out, size_t olen) {
  if (olen > 0xffff) return KMK_MLS_ERR_ARG;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u16(&w, (uint16_t)olen);
  w_label(&w, label);
  kmk_mls_w_vec(&w, ctx, clen);
  int rc = w.err ? w.err : kmk_mls_hkdf_expand(secret, slen, w.buf, w.len, out, olen);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_derive_secret(const uint8_t *secret, size_t slen, const char *label,
                          uint8_t out[KMK_MLS_NH]) {
  return kmk_mls_expand_with_label(secret, slen, label, NULL, 0, out, KMK_MLS_NH);
}

int kmk_mls_derive_tree_secret(const uint8_t *secret, size_t slen, const char *label,
                               uint32_t generation, uint8_t *out, size_t olen) {
  uint8_t g[4] = {(uint8_t)(generation >> 24), (uint8_t)(generation >> 16),
                  (uint8_t)(generation >> 8), (uint8_t)generation};
  return kmk_mls_expand_with_label(secret, slen, label, g, 4, out, olen);
}

int kmk_mls_ref_hash(const char *label, const void *value, size_t n, uint8_t out[KMK_MLS_NH]) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, label, strlen(label));
  kmk_mls_w_vec(&w, value, n);
  int rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, out);
  kmk_mls_w_free(&w);
  return rc;
}

static int sign_content(kmk_mls_w *w, const char *label, const void *content, size_t n) {
  kmk_mls_w_init(w);
  w_label(w, label);
  return kmk_mls_w_vec(w, content, n);
}

int kmk_mls_sign_with_label(const uint8_t priv[KMK_MLS_PRIV], const char *label,
                            const void *content, size_t n, uint8_t *sig, size_t *sig_len) {
  kmk_mls_w w;
  int rc = sign_content(&w, label, content, n);
  if (!rc) rc = kmk_mls_sign(priv, w.buf, w.len, sig, sig_len);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_verify_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                              const void *content, size_t n, const uint8_t *sig, size_t sig_len) {
  kmk_mls_w w;
  int rc = sign_content(&w, label, content, n);
  if (!rc) rc = kmk_mls_verify(pub, pub_len, w.buf, w.len, sig, sig_len);
  kmk_mls_w_free(&w);
  return rc;
}
