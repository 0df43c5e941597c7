/* test_dave_mls.c - DAVE's MLS profile without a peer: key package identity and capabilities,
 * user id from credentials, external sender package parsing (op 25) and its malformed forms. */
#include "check.h"
#include "kameko/dave.h"

static void test_key_package_identity(void) {
  kmk_mls_key_package_keys keys;
  kmk_mls_bytes kp = {0};
  const uint64_t uid = 158049329150427136ull;
  CHECK_EQ_INT(kmk_dave_key_package_create(uid, &keys, &kp), 0);
  kmk_mls_r r;
  kmk_mls_key_package k;
  kmk_mls_r_init(&r, kp.data, kp.len);
  CHECK_EQ_INT(kmk_mls_key_package_decode(&r, &k), 0);
  uint64_t got = 0;
  CHECK_EQ_INT(kmk_dave_leaf_user_id(&k.leaf, &got), 0);
  CHECK(got == uid);
  CHECK(k.leaf.credential.identity.p[0] == (uint8_t)(uid >> 56)); /* big-endian */
  kmk_mls_bytes_free(&kp);
}

static void test_external_sender_parse(void) {
  uint8_t priv[32], pub[65];
  CHECK_EQ_INT(kmk_mls_p256_keygen(priv, pub), 0);
  uint8_t pkg[80];
  size_t n = 0;
  pkg[n++] = 0x40; /* varint 65 */
  pkg[n++] = 0x41;
  memcpy(pkg + n, pub, 65);
  n += 65;
  pkg[n++] = 0x00;
  pkg[n++] = 0x01; /* basic */
  pkg[n++] = 8;
  memset(pkg + n, 0, 8);
  n += 8;
  kmk_mls_external_sender es;
  CHECK_EQ_INT(kmk_dave_external_sender_parse(pkg, n, &es), 0);
  CHECK(es.signature_key.len == 65 && es.credential.identity.len == 8);
  CHECK_EQ_INT(kmk_dave_external_sender_parse(pkg, n - 1, &es), KMK_DAVE_ERR_DECODE);
  uint8_t longer[81];
  memcpy(longer, pkg, n);
  longer[n] = 0;
  CHECK_EQ_INT(kmk_dave_external_sender_parse(longer, n + 1, &es), KMK_DAVE_ERR_DECODE);
  pkg[40] ^= 1; /* point off the curve */
  CHECK_EQ_INT(kmk_dave_external_sender_parse(pkg, n, &es), KMK_DAVE_ERR_DECODE);
  pkg[40] ^= 1;
  pkg[68] = 0x02; /* x509 credential with a malformed body */
  CHECK_EQ_INT(kmk_dave_external_sender_parse(pkg, n, &es), KMK_DAVE_ERR_DECODE);
}

int main(void) {
  RUN(test_key_package_identity);
  RUN(test_external_sender_parse);
  return check_done();
}
