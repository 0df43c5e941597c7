/* test_mls_basics.c - codec (deserialization.json + malformed input), tree math (tree-math.json)
 * and suite-2 crypto (crypto-basics.json) of the MLS layer. */
#include "check.h"
#include "kameko/mls.h"
#include "test_mls_vec.h"

static void test_varint_vectors(void) {
  cJSON *j = vec_load("deserialization.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    size_t n;
    uint8_t *hdr = vec_hex(e, "vlbytes_header", &n);
    uint64_t want = (uint64_t)vec_num(e, "length"), got = 0;
    kmk_mls_r r;
    kmk_mls_r_init(&r, hdr, n);
    int ok = kmk_mls_r_varint(&r, &got) == 0 && got == want && kmk_mls_r_done(&r) == 0;
    kmk_mls_w w;
    kmk_mls_w_init(&w);
    kmk_mls_w_varint(&w, want);
    ok = ok && w.len == n && memcmp(w.buf, hdr, n) == 0;
    kmk_mls_w_free(&w);
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
    free(hdr);
  }
  cJSON_Delete(j);
  vec_report("deserialization");
}

static void test_codec_malformed(void) {
  kmk_mls_r r;
  uint64_t v;
  const uint8_t bad_prefix[] = {0xc0, 0, 0, 0, 0, 0, 0, 0};
  kmk_mls_r_init(&r, bad_prefix, sizeof bad_prefix);
  CHECK_EQ_INT(kmk_mls_r_varint(&r, &v), KMK_MLS_ERR_DECODE);
  CHECK_EQ_INT(r.off, 0);
  const uint8_t non_minimal[] = {0x40, 0x25};
  kmk_mls_r_init(&r, non_minimal, 2);
  CHECK_EQ_INT(kmk_mls_r_varint(&r, &v), KMK_MLS_ERR_DECODE);
  const uint8_t non_minimal4[] = {0x80, 0x00, 0x3f, 0xff};
  kmk_mls_r_init(&r, non_minimal4, 4);
  CHECK_EQ_INT(kmk_mls_r_varint(&r, &v), KMK_MLS_ERR_DECODE);
  const uint8_t truncated[] = {0x80, 0x01};
  kmk_mls_r_init(&r, truncated, 2);
  CHECK_EQ_INT(kmk_mls_r_varint(&r, &v), KMK_MLS_ERR_DECODE);
  /* a vector claiming more bytes than remain */
  const uint8_t longvec[] = {0x05, 1, 2, 3};
  kmk_mls_r sub;
  kmk_mls_r_init(&r, longvec, sizeof longvec);
  CHECK_EQ_INT(kmk_mls_r_vec(&r, &sub), KMK_MLS_ERR_DECODE);
  CHECK_EQ_INT(r.off, 0);
  uint32_t u32;
  kmk_mls_r_init(&r, longvec, 3);
  CHECK_EQ_INT(kmk_mls_r_u32(&r, &u32), KMK_MLS_ERR_DECODE);
  kmk_mls_r_init(&r, NULL, 0);
  uint8_t u8;
  CHECK_EQ_INT(kmk_mls_r_u8(&r, &u8), KMK_MLS_ERR_DECODE);
  uint8_t fixed[4];
  const uint8_t three[] = {0x03, 1, 2, 3};
  kmk_mls_r_init(&r, three, 4);
  CHECK_EQ_INT(kmk_mls_r_vec_fixed(&r, fixed, 4), KMK_MLS_ERR_DECODE);
  CHECK_EQ_INT(kmk_mls_r_vec_fixed(&r, fixed, 3), 0);
  CHECK_EQ_INT(kmk_mls_r_done(&r), 0);
}

static void test_codec_roundtrip(void) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u8(&w, 0xab);
  kmk_mls_w_u16(&w, 0x1234);
  kmk_mls_w_u32(&w, 0xdeadbeef);
  kmk_mls_w_u64(&w, 0x0102030405060708ull);
  size_t m = kmk_mls_w_begin(&w);
  uint8_t big[300];
  memset(big, 7, sizeof big);
  kmk_mls_w_vec(&w, big, sizeof big); /* 2-byte header inside a nested vector */
  kmk_mls_w_end(&w, m);
  CHECK_EQ_INT(kmk_mls_w_varint(&w, 1u << 30), KMK_MLS_ERR_ARG); /* too big; sticky */
  CHECK_EQ_INT(w.err, KMK_MLS_ERR_ARG);
  w.err = 0;
  kmk_mls_bytes out = {0};
  CHECK_EQ_INT(kmk_mls_w_finish(&w, &out), 0);
  kmk_mls_r r, outer, inner;
  kmk_mls_r_init(&r, out.data, out.len);
  uint8_t a;
  uint16_t b;
  uint32_t c;
  uint64_t d;
  CHECK(!kmk_mls_r_u8(&r, &a) && a == 0xab);
  CHECK(!kmk_mls_r_u16(&r, &b) && b == 0x1234);
  CHECK(!kmk_mls_r_u32(&r, &c) && c == 0xdeadbeef);
  CHECK(!kmk_mls_r_u64(&r, &d) && d == 0x0102030405060708ull);
  CHECK_EQ_INT(kmk_mls_r_vec(&r, &outer), 0);
  CHECK_EQ_INT(outer.len, 302);
  CHECK_EQ_INT(kmk_mls_r_vec(&outer, &inner), 0);
  CHECK_EQ_INT(inner.len, 300);
  CHECK_EQ_INT(kmk_mls_r_done(&r), 0);
  kmk_mls_bytes_free(&out);
}

static int64_t json_idx(const cJSON *arr, int i) {
  const cJSON *v = cJSON_GetArrayItem(arr, i);
  return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static void test_tree_math_vectors(void) {
  cJSON *j = vec_load("tree-math.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    uint32_t n = (uint32_t)vec_num(e, "n_leaves");
    int ok = kmk_mls_tree_width(n) == (uint32_t)vec_num(e, "n_nodes") &&
             kmk_mls_tree_root(n) == (uint32_t)vec_num(e, "root");
    const cJSON *l = cJSON_GetObjectItem(e, "left"), *r = cJSON_GetObjectItem(e, "right"),
                *p = cJSON_GetObjectItem(e, "parent"), *s = cJSON_GetObjectItem(e, "sibling");
    for (uint32_t x = 0; ok && x < kmk_mls_tree_width(n); x++) {
      ok = kmk_mls_tree_left(x) == json_idx(l, (int)x) &&
           kmk_mls_tree_right(x) == json_idx(r, (int)x) &&
           kmk_mls_tree_parent(x, n) == json_idx(p, (int)x) &&
           kmk_mls_tree_sibling(x, n) == json_idx(s, (int)x);
      if (!ok) fprintf(stderr, "  tree-math n=%u x=%u\n", n, x);
    }
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
  }
  cJSON_Delete(j);
  vec_report("tree-math");
  uint32_t path[32];
  /* 8 leaves: leaf 2 (node 4) -> parents 5, 3, 7; copath 6, 1, 11 */
  CHECK_EQ_INT(kmk_mls_tree_direct_path(4, 8, path, 32), 3);
  CHECK(path[0] == 5 && path[1] == 3 && path[2] == 7);
  CHECK_EQ_INT(kmk_mls_tree_copath(4, 8, path, 32), 3);
  CHECK(path[0] == 6 && path[1] == 1 && path[2] == 11);
  CHECK_EQ_INT(kmk_mls_tree_direct_path(15, 8, path, 32), -1);
}

static int check_crypto_case(const cJSON *e) {
  int ok = 1;
  size_t n1, n2, n3, n4, n5;
  uint8_t out[256];
  const cJSON *x = cJSON_GetObjectItem(e, "ref_hash");
  uint8_t *v = vec_hex(x, "value", &n1);
  ok &= kmk_mls_ref_hash(cJSON_GetObjectItem(x, "label")->valuestring, v, n1, out) == 0 &&
        vec_hex_eq(x, "out", out, 32);
  free(v);

  x = cJSON_GetObjectItem(e, "expand_with_label");
  uint8_t *sec = vec_hex(x, "secret", &n1), *ctx = vec_hex(x, "context", &n2);
  size_t len = (size_t)vec_num(x, "length");
  ok &= len <= sizeof out &&
        kmk_mls_expand_with_label(sec, n1, cJSON_GetObjectItem(x, "label")->valuestring, ctx, n2,
                                  out, len) == 0 &&
        vec_hex_eq(x, "out", out, len);
  free(sec);
  free(ctx);

  x = cJSON_GetObjectItem(e, "derive_secret");
  sec = vec_hex(x, "secret", &n1);
  ok &= kmk_mls_derive_secret(sec, n1, cJSON_GetObjectItem(x, "label")->valuestring, out) == 0 &&
        vec_hex_eq(x, "out", out, 32);
  free(sec);

  x = cJSON_GetObjectItem(e, "derive_tree_secret");
  sec = vec_hex(x, "secret", &n1);
  len = (size_t)vec_num(x, "length");
  ok &= kmk_mls_derive_tree_secret(sec, n1, cJSON_GetObjectItem(x, "label")->valuestring,
                                   (uint32_t)vec_num(x, "generation"), out, len) == 0 &&
        vec_hex_eq(x, "out", out, len);
  free(sec);

  x = cJSON_GetObjectItem(e, "sign_with_label");
  uint8_t *priv = vec_hex(x, "priv", &n1), *pub = vec_hex(x, "pub", &n2),
          *content = vec_hex(x, "content", &n3), *sig = vec_hex(x, "signature", &n4);
  const char *label = cJSON_GetObjectItem(x, "label")->valuestring;
  ok &= kmk_mls_verify_with_label(pub, n2, label, content, n3, sig, n4) == 0;
  uint8_t mysig[KMK_MLS_SIG_MAX];
  size_t mysig_len = sizeof mysig;
  uint8_t derived_pub[KMK_MLS_PUB];
  ok &= n1 == 32 && kmk_mls_p256_pub_from_priv(priv, derived_pub) == 0 && n2 == KMK_MLS_PUB &&
        memcmp(derived_pub, pub, KMK_MLS_PUB) == 0;
  ok &= kmk_mls_sign_with_label(priv, label, content, n3, mysig, &mysig_len) == 0 &&
        kmk_mls_verify_with_label(pub, n2, label, content, n3, mysig, mysig_len) == 0;
  content[0] ^= 1;
  ok &= kmk_mls_verify_with_label(pub, n2, label, content, n3, sig, n4) == KMK_MLS_ERR_VERIFY;
  free(priv);
  free(pub);
  free(content);
  free(sig);

  x = cJSON_GetObjectItem(e, "encrypt_with_label");
  priv = vec_hex(x, "priv", &n1);
  pub = vec_hex(x, "pub", &n2);
  ctx = vec_hex(x, "context", &n3);
  uint8_t *kem = vec_hex(x, "kem_output", &n4), *ct = vec_hex(x, "ciphertext", &n5);
  size_t ptn;
  uint8_t *pt = vec_hex(x, "plaintext", &ptn);
  label = cJSON_GetObjectItem(x, "label")->valuestring;
  ok &= n5 >= 16 && n5 - 16 <= sizeof out &&
        kmk_mls_decrypt_with_label(priv, label, ctx, n3, kem, n4, ct, n5, out) == 0 &&
        n5 - 16 == ptn && memcmp(out, pt, ptn) == 0;
  /* our own seal opens with the vector's key pair */
  uint8_t kem2[KMK_MLS_PUB], ct2[256 + 16], pt2[256];
  ok &= ptn <= 256 && kmk_mls_encrypt_with_label(pub, n2, label, ctx, n3, pt, ptn, kem2, ct2) == 0 &&
        kmk_mls_decrypt_with_label(priv, label, ctx, n3, kem2, sizeof kem2, ct2, ptn + 16, pt2) == 0 &&
        memcmp(pt2, pt, ptn) == 0;
  ct[0] ^= 1;
  ok &= kmk_mls_decrypt_with_label(priv, label, ctx, n3, kem, n4, ct, n5, out) == KMK_MLS_ERR_VERIFY;
  free(priv);
  free(pub);
  free(ctx);
  free(kem);
  free(ct);
  free(pt);
  return ok;
}

static void test_crypto_basics_vectors(void) {
  vec_run("crypto-basics.json", "crypto-basics", check_crypto_case);
}

static void test_primitives(void) {
  /* RFC 5869 test case 1 (SHA-256) */
  static const uint8_t ikm[22] = {0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
  static const uint8_t salt[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  static const uint8_t info[10] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9};
  static const uint8_t okm_want[42] = {
      0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
      0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
      0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65};
  uint8_t prk[32], okm[42];
  CHECK_EQ_INT(kmk_mls_hkdf_extract(salt, sizeof salt, ikm, sizeof ikm, prk), 0);
  CHECK_EQ_INT(kmk_mls_hkdf_expand(prk, 32, info, sizeof info, okm, sizeof okm), 0);
  CHECK(memcmp(okm, okm_want, 42) == 0);
  /* 16-byte PRK (the DAVE base secret) is accepted */
  CHECK_EQ_INT(kmk_mls_hkdf_expand(prk, 16, info, sizeof info, okm, 32), 0);
  /* AEAD round trip and tamper */
  uint8_t key[16] = {1}, nonce[12] = {2}, pt[5] = {1, 2, 3, 4, 5}, ct[21], back[5];
  CHECK_EQ_INT(kmk_mls_aead_seal(key, nonce, (const uint8_t *)"ad", 2, pt, 5, ct), 0);
  CHECK_EQ_INT(kmk_mls_aead_open(key, nonce, (const uint8_t *)"ad", 2, ct, 21, back), 0);
  CHECK(memcmp(back, pt, 5) == 0);
  ct[20] ^= 0x80;
  CHECK_EQ_INT(kmk_mls_aead_open(key, nonce, (const uint8_t *)"ad", 2, ct, 21, back),
               KMK_MLS_ERR_VERIFY);
  CHECK_EQ_INT(kmk_mls_aead_open(key, nonce, NULL, 0, ct, 15, back), KMK_MLS_ERR_DECODE);
  /* ECDH agreement and keygen */
  uint8_t a[32], ap[65], b[32], bp[65], s1[32], s2[32];
  CHECK_EQ_INT(kmk_mls_p256_keygen(a, ap), 0);
  CHECK_EQ_INT(kmk_mls_p256_keygen(b, bp), 0);
  CHECK_EQ_INT(kmk_mls_ecdh(a, bp, 65, s1), 0);
  CHECK_EQ_INT(kmk_mls_ecdh(b, ap, 65, s2), 0);
  CHECK(memcmp(s1, s2, 32) == 0);
  CHECK_EQ_INT(kmk_mls_p256_check_pub(ap, 65), 0);
  ap[64] ^= 1; /* off the curve */
  CHECK(kmk_mls_p256_check_pub(ap, 65) != 0);
  CHECK(kmk_mls_ecdh(b, ap, 65, s2) != 0);
  CHECK(kmk_mls_p256_check_pub(ap, 33) != 0);
  uint8_t zero[32] = {0};
  CHECK(kmk_mls_p256_pub_from_priv(zero, bp) != 0);
}

/* RFC 9180 appendix A.3 (DHKEM(P-256), HKDF-SHA256, AES-128-GCM), base mode: DeriveKeyPair and
 * the first encryption. */
static void test_hpke_rfc9180(void) {
  struct { const char *k, *v; } f[] = {
      {"ikmE", "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e"},
      {"pkEm", "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4"},
      {"ikmR", "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550"},
      {"skRm", "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2"},
      {"pkRm", "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0"},
      {"info", "4f6465206f6e2061204772656369616e2055726e"},
      {"aad", "436f756e742d30"},
      {"pt", "4265617574792069732074727574682c20747275746820626561757479"},
      {"ct", "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434"},
  };
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) cJSON_AddStringToObject(o, f[i].k, f[i].v);
  size_t n, ni, na, np;
  uint8_t priv[32], pub[65], epriv[32], epub[65], kem[65], ct[64], pt[64];
  uint8_t *ikm = vec_hex(o, "ikmR", &n);
  CHECK_EQ_INT(kmk_mls_hpke_derive_key_pair(ikm, n, priv, pub), 0);
  CHECK(vec_hex_eq(o, "skRm", priv, 32));
  CHECK(vec_hex_eq(o, "pkRm", pub, 65));
  free(ikm);
  ikm = vec_hex(o, "ikmE", &n);
  CHECK_EQ_INT(kmk_mls_hpke_derive_key_pair(ikm, n, epriv, epub), 0);
  CHECK(vec_hex_eq(o, "pkEm", epub, 65));
  free(ikm);
  uint8_t *info = vec_hex(o, "info", &ni), *aad = vec_hex(o, "aad", &na), *ptv = vec_hex(o, "pt", &np);
  CHECK_EQ_INT(kmk_mls_hpke_seal_eph(pub, 65, epriv, info, ni, aad, na, ptv, np, kem, ct), 0);
  CHECK(vec_hex_eq(o, "pkEm", kem, 65));
  CHECK(vec_hex_eq(o, "ct", ct, np + 16));
  CHECK_EQ_INT(kmk_mls_hpke_open(priv, kem, 65, info, ni, aad, na, ct, np + 16, pt), 0);
  CHECK(memcmp(pt, ptv, np) == 0);
  CHECK(kmk_mls_hpke_open(priv, kem, 64, info, ni, aad, na, ct, np + 16, pt) != 0);
  free(info);
  free(aad);
  free(ptv);
  cJSON_Delete(o);
}

int main(void) {
  RUN(test_varint_vectors);
  RUN(test_codec_malformed);
  RUN(test_codec_roundtrip);
  RUN(test_tree_math_vectors);
  RUN(test_primitives);
  RUN(test_hpke_rfc9180);
  RUN(test_crypto_basics_vectors);
  return check_done();
}
